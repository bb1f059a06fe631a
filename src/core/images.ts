/**
 * @module
 * Images: the challenge pictures the probe draws, and caller images checked before they are sent.
 *
 * A caller image must be a PNG, JPEG, WebP or GIF by its own header (never its name or MIME type), within
 * the byte limit, and within the pixel limit as read from the header, so a decompression bomb is refused
 * without being expanded. PNG, JPEG and WebP are then fully decoded by `Bun.Image` (truncated or corrupt
 * data fails there) and downscaled to at most 1024 px on the long side; GIFs, which Bun.Image does not
 * decode, are checked from their header and sent as they are.
 */
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path'
import { deflateSync } from 'node:zlib'
import { ImagePathNotAllowed, ImageTooLarge, NotAnImage } from './errors.ts'

export const MAX_IMAGE_BYTES = 20 * 1000 * 1000
export const MAX_IMAGE_PIXELS = 40_000_000
/** Long side of what is sent to the model. */
export const MAX_SIDE = 1024

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif'

/** What an image's header says. */
export interface ImageHeader {
	mime: ImageMime
	width: number
	height: number
}

/** Image bytes ready to send, with their real MIME type and size. */
export interface PreparedImage extends ImageHeader {
	data: Uint8Array
	/** What the caller gave, for messages (`image_b64`, a file name). */
	source: string
	resized: boolean
}

/** `data:<mime>;base64,...` */
export function dataUri(mime: string, data: Uint8Array): string {
	return `data:${mime};base64,${Buffer.from(data).toString('base64')}`
}

// ---------------------------------------------------------------- drawing

/** An RGB colour. */
export type Rgb = readonly [number, number, number]

/** A PNG (8-bit RGB, no interlace) of `width` x `height` pixels painted by `pixel(x, y)`. */
export function encodePng(width: number, height: number, pixel: (x: number, y: number) => Rgb): Uint8Array {
	const row = 1 + width * 3
	const raw = Buffer.alloc(row * height)
	for (let y = 0; y < height; y++) {
		raw[y * row] = 0 // filter: none
		for (let x = 0; x < width; x++) {
			const [r, g, b] = pixel(x, y)
			const at = y * row + 1 + x * 3
			raw[at] = r
			raw[at + 1] = g
			raw[at + 2] = b
		}
	}
	const ihdr = Buffer.alloc(13)
	ihdr.writeUInt32BE(width, 0)
	ihdr.writeUInt32BE(height, 4)
	ihdr.set([8, 2, 0, 0, 0], 8) // bit depth 8, colour type RGB, deflate, filter 0, no interlace
	// node:zlib writes the zlib wrapper PNG needs (Bun.deflateSync writes raw deflate).
	const chunks = [chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]
	return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks])
}

function chunk(type: string, data: Buffer): Buffer {
	const out = Buffer.alloc(12 + data.length)
	out.writeUInt32BE(data.length, 0)
	out.write(type, 4, 'latin1')
	data.copy(out, 8)
	out.writeUInt32BE(Bun.hash.crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length)
	return out
}

// ---------------------------------------------------------------- headers

/** The format and size of an image from its header alone, or undefined when it is not one of ours. */
export function readImageHeader(data: Uint8Array): ImageHeader | undefined {
	const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
	if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a && b.toString('latin1', 12, 16) === 'IHDR') {
		return { mime: 'image/png', width: b.readUInt32BE(16), height: b.readUInt32BE(20) }
	}
	if (b.length >= 10 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) {
		return { mime: 'image/gif', width: b.readUInt16LE(6), height: b.readUInt16LE(8) }
	}
	if (b.length >= 30 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
		const kind = b.toString('latin1', 12, 16)
		if (kind === 'VP8X') return { mime: 'image/webp', width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) }
		if (kind === 'VP8L' && b[20] === 0x2f) {
			const bits = b.readUInt32LE(21)
			return { mime: 'image/webp', width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) }
		}
		if (kind === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
			return { mime: 'image/webp', width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff }
		}
		return undefined
	}
	if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpegHeader(b)
	return undefined
}

/** Walk JPEG segments to the first start-of-frame marker, which holds the size. */
function jpegHeader(b: Buffer): ImageHeader | undefined {
	let i = 2
	while (i + 9 < b.length) {
		if (b[i] !== 0xff) return undefined
		const marker = b[i + 1] as number
		if (marker === 0xff) {
			i++ // fill byte
			continue
		}
		const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc
		if (isFrame) return { mime: 'image/jpeg', height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) }
		if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
			i += 2
			continue
		}
		i += 2 + b.readUInt16BE(i + 2)
	}
	return undefined
}

// ---------------------------------------------------------------- caller images

/**
 * Check a caller's image and make it ready to send.
 * @param source what to call it in messages (`image_b64`, the file name)
 * @throws {NotAnImage} @throws {ImageTooLarge}
 */
export async function prepareImage(data: Uint8Array, source: string): Promise<PreparedImage> {
	if (data.byteLength > MAX_IMAGE_BYTES) {
		throw new ImageTooLarge(source, `${data.byteLength.toLocaleString('en')} bytes, the limit is ${MAX_IMAGE_BYTES.toLocaleString('en')}`)
	}
	if (!data.byteLength) throw new NotAnImage(source, 'it is empty')
	const header = readImageHeader(data)
	if (!header || !header.width || !header.height) throw new NotAnImage(source)
	if (header.width * header.height > MAX_IMAGE_PIXELS) {
		throw new ImageTooLarge(
			source,
			`${header.width}x${header.height} pixels, the limit is ${MAX_IMAGE_PIXELS / 1_000_000} megapixels`
		)
	}
	if (header.mime === 'image/gif') return { ...header, data, source, resized: false }
	const fits = Math.max(header.width, header.height) <= MAX_SIDE
	try {
		const image = new Bun.Image(data.slice(), { maxPixels: MAX_IMAGE_PIXELS })
		if (fits) {
			await image.bytes() // a full decode and re-encode: truncated or corrupt data fails here
			return { ...header, data, source, resized: false }
		}
		const resized = image.resize(MAX_SIDE, MAX_SIDE, { fit: 'inside' })
		const out = header.mime === 'image/jpeg' ? await resized.jpeg({ quality: 90 }).bytes() : await resized.png().bytes()
		const after = readImageHeader(out)
		const mime: ImageMime = header.mime === 'image/jpeg' ? 'image/jpeg' : 'image/png'
		return { mime, width: after?.width ?? 0, height: after?.height ?? 0, data: out, source, resized: true }
	} catch {
		throw new NotAnImage(source, 'it could not be decoded')
	}
}

/**
 * Raw base64 or a `data:<mime>;base64,` URI, checked.
 * @throws {ImageTooLarge} when it decodes to more than the byte limit @throws {NotAnImage} when it is not base64
 */
export function decodeBase64Image(text: string): Uint8Array {
	let body = text
	if (body.startsWith('data:')) {
		const comma = body.indexOf(',')
		if (comma < 0 || !body.slice(0, comma).includes(';base64')) throw new NotAnImage('image_b64', 'a data URI must be base64-encoded')
		body = body.slice(comma + 1)
	}
	body = body.replace(/\s+/g, '')
	if (body.length > Math.ceil(MAX_IMAGE_BYTES / 3) * 4 + 8) throw new ImageTooLarge('image_b64', `over ${MAX_IMAGE_BYTES / 1_000_000} MB`)
	if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 === 1) throw new NotAnImage('image_b64', 'it is not valid base64')
	return new Uint8Array(Buffer.from(body, 'base64'))
}

/**
 * `path` resolved (symlinks too) and required to stay inside one of `roots`. Relative paths are taken
 * from the first root. Containment is checked before existence, so the answer for a path outside the
 * roots never reveals whether it exists.
 * @throws {ImagePathNotAllowed} @throws {NotAnImage}
 */
export function resolveImagePath(path: string, roots: readonly string[]): string {
	if (!path || path.includes('\0')) throw new NotAnImage('image_path', 'it is empty or contains a NUL byte')
	const realRoots = roots.map((r) => {
		try {
			return realpathSync(r)
		} catch {
			return resolve(r)
		}
	})
	if (!realRoots.length) throw new ImagePathNotAllowed()
	const candidate = isAbsolute(path) ? path : resolve(realRoots[0] as string, path)
	let real: string
	try {
		real = realpathSync(candidate)
	} catch (error) {
		// It does not exist (or a link loops): judge where its existing part leads (a linked folder may
		// leave the roots), then say it is missing.
		if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new ImagePathNotAllowed()
		real = realpathOfExisting(candidate)
		if (!inside(real, realRoots)) throw new ImagePathNotAllowed()
		throw new NotAnImage('image_path', 'no such file under the image roots')
	}
	if (!inside(real, realRoots)) throw new ImagePathNotAllowed()
	if (!statSync(real).isFile()) throw new NotAnImage('image_path', 'it is not a file')
	return real
}

/** `path` with its deepest existing ancestor resolved through symlinks and the missing rest appended. */
function realpathOfExisting(path: string): string {
	const missing: string[] = []
	for (let head = resolve(path); ; ) {
		try {
			return join(realpathSync(head), ...missing.reverse())
		} catch {
			const parent = dirname(head)
			if (parent === head) return resolve(path)
			missing.push(basename(head))
			head = parent
		}
	}
}

function inside(path: string, roots: readonly string[]): boolean {
	return roots.some((root) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep))
}

/**
 * Read an image file, at most MAX_IMAGE_BYTES + 1 bytes, so a huge file is refused without reading it all.
 * @throws {ImageTooLarge} @throws {NotAnImage}
 */
export function readImageFile(path: string, source: string): Uint8Array {
	let fd: number
	try {
		const size = statSync(path).size
		if (size > MAX_IMAGE_BYTES) {
			throw new ImageTooLarge(source, `${size.toLocaleString('en')} bytes, the limit is ${MAX_IMAGE_BYTES.toLocaleString('en')}`)
		}
		fd = openSync(path, 'r')
	} catch (error) {
		if (error instanceof ImageTooLarge) throw error
		const code = (error as NodeJS.ErrnoException).code
		throw new NotAnImage(source, code === 'EACCES' || code === 'EPERM' ? 'it is not readable' : 'no such file')
	}
	try {
		const buffer = new Uint8Array(MAX_IMAGE_BYTES + 1)
		let n = 0
		for (;;) {
			const got = readSync(fd, buffer, n, buffer.length - n, null)
			if (!got) break
			n += got
			if (n === buffer.length) break
		}
		if (n > MAX_IMAGE_BYTES) throw new ImageTooLarge(source, `over ${MAX_IMAGE_BYTES.toLocaleString('en')} bytes`)
		return buffer.slice(0, n)
	} catch (error) {
		if (error instanceof ImageTooLarge) throw error
		throw new NotAnImage(source, 'it could not be read (is it a folder?)')
	} finally {
		closeSync(fd)
	}
}
