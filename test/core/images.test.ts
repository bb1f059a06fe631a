/** Caller images: checked by their own header, decoded, size-limited, and read only from inside the image roots. */
import { describe, expect, test } from 'bun:test'
import { mkdirSync, realpathSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ImagePathNotAllowed, ImageTooLarge, NotAnImage } from '../../src/core/errors.ts'
import {
	MAX_IMAGE_BYTES,
	dataUri,
	decodeBase64Image,
	prepareImage,
	readImageFile,
	readImageHeader,
	resolveImagePath
} from '../../src/core/images.ts'
import { caught, rejected } from '../helpers/errors.ts'
import { bmp, bombPng, gifHeader, reencode, solidPng, tinyGif } from '../helpers/images.ts'
import { tempDir } from '../helpers/registry.ts'

const RED = [255, 0, 0] as const

describe('readImageHeader()', () => {
	test('reads the format and size of PNG, JPEG and WebP (lossy and lossless) from their bytes', async () => {
		const png = solidPng(64, 48, RED)
		const found = {
			png: readImageHeader(png),
			jpeg: readImageHeader(await reencode(png, 'jpeg')),
			webp: readImageHeader(await reencode(png, 'webp')),
			lossless: readImageHeader(await reencode(png, 'webp-lossless'))
		}
		expect(found).toEqual({
			png: { mime: 'image/png', width: 64, height: 48 },
			jpeg: { mime: 'image/jpeg', width: 64, height: 48 },
			webp: { mime: 'image/webp', width: 64, height: 48 },
			lossless: { mime: 'image/webp', width: 64, height: 48 }
		})
	})

	test('reads GIF87a and GIF89a headers', () => {
		expect([readImageHeader(gifHeader(300, 200, '87a')), readImageHeader(gifHeader(65535, 2))]).toEqual([
			{ mime: 'image/gif', width: 300, height: 200 },
			{ mime: 'image/gif', width: 65535, height: 2 }
		])
	})

	test('reads an extended WebP (VP8X) header', () => {
		const b = Buffer.alloc(30)
		b.write('RIFF', 0, 'latin1')
		b.writeUInt32LE(22, 4)
		b.write('WEBPVP8X', 8, 'latin1')
		b.writeUIntLE(1999, 24, 3) // stored minus one
		b.writeUIntLE(999, 27, 3)
		expect(readImageHeader(b)).toEqual({ mime: 'image/webp', width: 2000, height: 1000 })
	})

	test('knows nothing of other bytes: text, BMP, a cut-off PNG signature', () => {
		const png = solidPng(8, 8, RED)
		expect([readImageHeader(Buffer.from('hello, I am text')), readImageHeader(bmp(4, 4, RED)), readImageHeader(png.slice(0, 20))]).toEqual([
			undefined,
			undefined,
			undefined
		])
	})
})

describe('prepareImage()', () => {
	test('small PNG, JPEG, WebP and GIF pass through unchanged with their real MIME type', async () => {
		const png = solidPng(64, 64, RED)
		const jpeg = await reencode(png, 'jpeg')
		const webp = await reencode(png, 'webp')
		const gif = tinyGif()
		const prepared = await Promise.all([prepareImage(png, 'x'), prepareImage(jpeg, 'x'), prepareImage(webp, 'x'), prepareImage(gif, 'x')])
		expect(prepared.map(({ mime, width, height, resized }) => ({ mime, width, height, resized }))).toEqual([
			{ mime: 'image/png', width: 64, height: 64, resized: false },
			{ mime: 'image/jpeg', width: 64, height: 64, resized: false },
			{ mime: 'image/webp', width: 64, height: 64, resized: false },
			{ mime: 'image/gif', width: 1, height: 1, resized: false }
		])
		expect(prepared.map((p) => p.data)).toEqual([png, jpeg, webp, gif])
		const j = prepared[1]!
		expect(dataUri(j.mime, j.data)).toStartWith('data:image/jpeg;base64,')
	})

	test('a large JPEG is downscaled to 1024 px on the long side and stays a JPEG', async () => {
		const p = await prepareImage(await reencode(solidPng(3000, 1500, RED), 'jpeg'), 'x')
		expect({ width: p.width, height: p.height, resized: p.resized, mime: p.mime, header: readImageHeader(p.data) }).toEqual({
			width: 1024,
			height: 512,
			resized: true,
			mime: 'image/jpeg',
			header: { mime: 'image/jpeg', width: 1024, height: 512 }
		})
	})

	test('a large WebP is downscaled and sent as PNG', async () => {
		const p = await prepareImage(await reencode(solidPng(1500, 3000, RED), 'webp'), 'x')
		expect({ width: p.width, height: p.height, resized: p.resized, mime: p.mime, header: readImageHeader(p.data) }).toEqual({
			width: 512,
			height: 1024,
			resized: true,
			mime: 'image/png',
			header: { mime: 'image/png', width: 512, height: 1024 }
		})
	})

	// The Python version re-encoded a BMP as PNG; DESIGN names PNG, JPEG, WebP and GIF only.
	test('a BMP is not one of the formats the loader sends', async () => {
		const error = await rejected(NotAnImage, prepareImage(bmp(16, 16, RED), 'photo.bmp'))
		expect(error.message).toBe('photo.bmp is not a readable image. Send a PNG, JPEG, WebP or GIF file')
	})

	test('a text file named .png is not an image', async () => {
		using dir = tempDir()
		const fake = join(dir.path, 'fake.png')
		writeFileSync(fake, 'hello, I am text')
		const error = await rejected(NotAnImage, prepareImage(readImageFile(fake, 'fake.png'), 'fake.png'))
		expect(error.message).toContain('fake.png is not a readable image')
	})

	test('a truncated PNG is not an image: its header is fine, its data does not decode', async () => {
		const png = solidPng(200, 200, RED)
		expect(readImageHeader(png.slice(0, 120))).toEqual({ mime: 'image/png', width: 200, height: 200 })
		const error = await rejected(NotAnImage, prepareImage(png.slice(0, 120), 'x'))
		expect(error.message).toContain('it could not be decoded')
	})

	test('a truncated JPEG is not an image', async () => {
		const jpeg = await reencode(solidPng(200, 200, RED), 'jpeg')
		await rejected(NotAnImage, prepareImage(jpeg.slice(0, 200), 'x'))
	})

	test('empty bytes are not an image', async () => {
		expect((await rejected(NotAnImage, prepareImage(new Uint8Array(0), 'x'))).message).toContain('empty')
	})

	test('a header that says 0 pixels wide is not an image', async () => {
		await rejected(NotAnImage, prepareImage(gifHeader(0, 10), 'x'))
	})

	test('oversized bytes are refused before decoding, and an oversized file before reading it', async () => {
		const big = new Uint8Array(MAX_IMAGE_BYTES + 4)
		big.set([0x89, 0x50, 0x4e, 0x47])
		expect((await rejected(ImageTooLarge, prepareImage(big, 'x'))).message).toContain('limit')
		using dir = tempDir()
		const file = join(dir.path, 'big.png')
		writeFileSync(file, '')
		truncateSync(file, MAX_IMAGE_BYTES + 1) // sparse: nothing to read, only a size
		expect(caught(ImageTooLarge, () => readImageFile(file, 'big.png')).message).toContain('big.png is too large')
	})

	test('a decompression bomb is refused from its header', async () => {
		// A 20000x20000 (400 Mpx) 1-bit PNG compresses to under 50 KB; decoding it would take hundreds of MB.
		const bomb = bombPng()
		expect(bomb.byteLength).toBeLessThan(200_000)
		expect((await rejected(ImageTooLarge, prepareImage(bomb, 'bomb.png'))).message).toContain('20000x20000 pixels')
		expect((await rejected(ImageTooLarge, prepareImage(gifHeader(65535, 65535), 'bomb.gif'))).message).toContain('pixels')
	})
})

describe('readImageFile()', () => {
	test('reads a file, and says so when it is missing or a folder', () => {
		using dir = tempDir()
		const png = solidPng(8, 8, RED)
		writeFileSync(join(dir.path, 'a.png'), png)
		expect(readImageFile(join(dir.path, 'a.png'), 'a.png')).toEqual(png)
		expect(caught(NotAnImage, () => readImageFile(join(dir.path, 'gone.png'), 'gone.png')).message).toContain('no such file')
		expect(caught(NotAnImage, () => readImageFile(dir.path, 'folder')).message).toContain('is it a folder?')
	})
})

describe('decodeBase64Image()', () => {
	test('decodes raw base64 and data URIs, and refuses what is not base64 or too large', () => {
		const raw = solidPng(64, 64, RED)
		const b64 = Buffer.from(raw).toString('base64')
		expect(decodeBase64Image(b64)).toEqual(raw)
		expect(decodeBase64Image(`data:image/png;base64,${b64}`)).toEqual(raw)
		expect(decodeBase64Image(b64.replace(/(.{76})/g, '$1\n'))).toEqual(raw) // MIME line breaks
		expect(caught(NotAnImage, () => decodeBase64Image('not base64 !!!')).message).toContain('base64')
		expect(caught(NotAnImage, () => decodeBase64Image('data:image/png,plain')).message).toContain('base64')
		expect(caught(NotAnImage, () => decodeBase64Image('A')).message).toContain('base64')
		caught(ImageTooLarge, () => decodeBase64Image('A'.repeat(MAX_IMAGE_BYTES * 2)))
	})
})

describe('resolveImagePath()', () => {
	test('resolves paths inside the roots only, symlinks included', () => {
		using dir = tempDir()
		const base = realpathSync(dir.path)
		const root = join(base, 'root')
		mkdirSync(join(root, 'sub'), { recursive: true })
		const img = join(root, 'sub', 'a.png')
		writeFileSync(img, solidPng(8, 8, RED))
		const outside = join(base, 'secret.png')
		writeFileSync(outside, solidPng(8, 8, RED))
		symlinkSync(outside, join(root, 'link.png'))
		symlinkSync(img, join(root, 'inner-link.png'))
		symlinkSync(base, join(root, 'up')) // a folder link out of the root
		const roots = [root]
		expect([resolveImagePath('sub/a.png', roots), resolveImagePath(img, roots), resolveImagePath('inner-link.png', roots)]).toEqual([
			img,
			img,
			img
		])
		for (const bad of ['../secret.png', outside, 'link.png', 'sub/../../secret.png', '/etc/passwd', 'up/secret.png', 'up/root/sub/a.png/../../../secret.png']) {
			expect({ bad, error: caught(ImagePathNotAllowed, () => resolveImagePath(bad, roots)).code }).toEqual({ bad, error: 'image_path_not_allowed' })
		}
		// Outside and missing: the same answer as outside and present, so nothing is learned about other folders.
		caught(ImagePathNotAllowed, () => resolveImagePath('../does-not-exist.png', roots))
		caught(ImagePathNotAllowed, () => resolveImagePath('/etc/no-such-file.png', roots))
		caught(ImagePathNotAllowed, () => resolveImagePath('up/no-such-file.png', roots)) // through a link out of the root
		expect(caught(NotAnImage, () => resolveImagePath('sub/missing.png', roots)).message).toContain('no such file')
		expect(caught(NotAnImage, () => resolveImagePath('sub', roots)).message).toContain('not a file')
		caught(NotAnImage, () => resolveImagePath('', roots))
		caught(NotAnImage, () => resolveImagePath('sub/a.png\0.txt', roots))
	})

	test('a symlink loop is refused', () => {
		using dir = tempDir()
		const root = realpathSync(dir.path)
		symlinkSync(join(root, 'b.png'), join(root, 'a.png'))
		symlinkSync(join(root, 'a.png'), join(root, 'b.png'))
		caught(ImagePathNotAllowed, () => resolveImagePath('a.png', [root]))
	})

	test('with several roots, an absolute path may be in any of them; relative paths start at the first', () => {
		using dir = tempDir()
		const base = realpathSync(dir.path)
		const [a, b] = [join(base, 'a'), join(base, 'b')]
		mkdirSync(a)
		mkdirSync(b)
		writeFileSync(join(b, 'x.png'), solidPng(8, 8, RED))
		expect(resolveImagePath(join(b, 'x.png'), [a, b])).toBe(join(b, 'x.png'))
		expect(resolveImagePath('../b/x.png', [a, b])).toBe(join(b, 'x.png'))
		expect(caught(NotAnImage, () => resolveImagePath('x.png', [a, b])).message).toContain('no such file')
	})

	test('a root that is itself a symlink still contains its files', () => {
		using dir = tempDir()
		const base = realpathSync(dir.path)
		mkdirSync(join(base, 'real'))
		writeFileSync(join(base, 'real', 'x.png'), solidPng(8, 8, RED))
		symlinkSync(join(base, 'real'), join(base, 'linked'))
		expect(resolveImagePath(join(base, 'linked', 'x.png'), [join(base, 'linked')])).toBe(join(base, 'real', 'x.png'))
		expect(resolveImagePath('x.png', [join(base, 'linked')])).toBe(join(base, 'real', 'x.png'))
	})

	test('a root that is a prefix of another folder does not contain it', () => {
		using dir = tempDir()
		const base = realpathSync(dir.path)
		mkdirSync(join(base, 'img'))
		mkdirSync(join(base, 'img-private'))
		writeFileSync(join(base, 'img-private', 'x.png'), solidPng(8, 8, RED))
		caught(ImagePathNotAllowed, () => resolveImagePath(join(base, 'img-private', 'x.png'), [join(base, 'img')]))
		caught(ImagePathNotAllowed, () => resolveImagePath('../img-private/x.png', [join(base, 'img')]))
	})
})
