/**
 * Test images the product's own encoder cannot make: PNGs of other bit depths (a real decompression
 * bomb), GIF and BMP headers written by hand, and JPEG or WebP re-encoded by Bun.Image. Plus a seeded
 * random source, so probes pick fixed colours.
 */
import { encodePng, type Rgb } from '../../src/core/images.ts'
import { assemblePng } from './png.ts'

/** A solid `width` x `height` PNG of `colour` (the product's encoder: 8-bit RGB). */
export function solidPng(width: number, height: number, colour: Rgb): Uint8Array {
	return encodePng(width, height, () => colour)
}

/** The same picture as JPEG or WebP, re-encoded by Bun.Image. */
export async function reencode(png: Uint8Array, format: 'jpeg' | 'webp' | 'webp-lossless'): Promise<Uint8Array> {
	const image = new Bun.Image(png.slice())
	if (format === 'jpeg') return image.jpeg({ quality: 90 }).bytes()
	return image.webp(format === 'webp-lossless' ? { lossless: true } : { quality: 90 }).bytes()
}

/**
 * A valid all-black 1-bit greyscale PNG: 20000 x 20000 (400 megapixels) compresses to about 50 KB, and
 * decoding it would take hundreds of megabytes.
 */
export function bombPng(width = 20_000, height = 20_000): Uint8Array {
	const raw = Buffer.alloc((1 + Math.ceil(width / 8)) * height) // every row: filter 0, then zero bits
	return assemblePng(width, height, [1, 0], raw, 9) // bit depth 1, greyscale
}

/** The first bytes of a GIF: header and logical screen descriptor (all the loader reads), then the trailer. */
export function gifHeader(width: number, height: number, version: '87a' | '89a' = '89a'): Uint8Array {
	const head = Buffer.alloc(13)
	head.write(`GIF${version}`, 0, 'latin1')
	head.writeUInt16LE(width, 6)
	head.writeUInt16LE(height, 8)
	return Buffer.concat([head, Buffer.from([0x3b])])
}

/** A whole 1x1 GIF89a (black pixel): a 2-entry colour table, an image descriptor and a tiny LZW stream. */
export function tinyGif(): Uint8Array {
	return Buffer.from('R0lGODlhAQABAIAAAAAAAP///ywAAAAAAQABAAACAkQBADs=', 'base64')
}

/** A 24-bit BMP of `width` x `height` in one colour (a format the loader does not send). */
export function bmp(width: number, height: number, [r, g, b]: Rgb): Uint8Array {
	const row = Math.ceil((width * 3) / 4) * 4
	const out = Buffer.alloc(54 + row * height)
	out.write('BM', 0, 'latin1')
	out.writeUInt32LE(out.length, 2)
	out.writeUInt32LE(54, 10)
	out.writeUInt32LE(40, 14)
	out.writeInt32LE(width, 18)
	out.writeInt32LE(height, 22)
	out.writeUInt16LE(1, 26)
	out.writeUInt16LE(24, 28)
	out.writeUInt32LE(row * height, 34)
	for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out.set([b, g, r], 54 + y * row + x * 3)
	return out
}

/** A seeded source of numbers in [0, 1) (mulberry32), so the probe's colours and shapes are fixed. */
export function seeded(seed: number): () => number {
	let a = seed >>> 0
	return () => {
		a = (a + 0x6d2b79f5) >>> 0
		let t = a
		t = Math.imul(t ^ (t >>> 15), t | 1)
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296
	}
}
