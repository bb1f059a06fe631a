/**
 * Small PNG pictures for requests to a vision model, encoded here (8-bit RGB, one IDAT) so the tests do
 * not depend on the product's own image code.
 */
import { deflateSync } from 'node:zlib'

/** An RGB colour. */
export type Rgb = readonly [number, number, number]

export const RED: Rgb = [220, 30, 30]
export const BLUE: Rgb = [30, 60, 220]
export const WHITE: Rgb = [255, 255, 255]

/** PNG bytes of a `width` x `height` picture painted by `pixel(x, y)`. */
export function png(width: number, height: number, pixel: (x: number, y: number) => Rgb): Uint8Array {
	const row = 1 + width * 3 // a filter byte (0: none), then RGB
	const raw = Buffer.alloc(row * height)
	for (let y = 0; y < height; y++) {
		for (let x = 0; x < width; x++) raw.set(pixel(x, y), y * row + 1 + x * 3)
	}
	return assemblePng(width, height, [8, 2], raw) // bit depth 8, colour type 2 (RGB)
}

/**
 * A PNG file from its filtered scanlines `raw`: signature, IHDR (`depth`, colour `type`; deflate, filter 0,
 * no interlace), one IDAT, IEND.
 */
export function assemblePng(width: number, height: number, [depth, type]: [number, number], raw: Buffer, level = 6): Uint8Array {
	const ihdr = Buffer.alloc(13)
	ihdr.writeUInt32BE(width, 0)
	ihdr.writeUInt32BE(height, 4)
	ihdr.set([depth, type, 0, 0, 0], 8)
	// node:zlib, not Bun.deflateSync: IDAT needs the zlib wrapper, and Bun's always writes raw deflate.
	const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
	return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level })), chunk('IEND', Buffer.alloc(0))])
}

function chunk(type: string, data: Buffer): Buffer {
	const out = Buffer.alloc(12 + data.length) // length, type, data, CRC of type and data
	out.writeUInt32BE(data.length, 0)
	out.write(type, 4, 'latin1')
	data.copy(out, 8)
	out.writeUInt32BE(Bun.hash.crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length)
	return out
}

/** A filled circle of `colour` on white, as the Python suite drew it (256 px there, `size` here). */
export function circlePng(colour: Rgb, size = 64): Uint8Array {
	const centre = (size - 1) / 2
	const radius = size * 0.42
	return png(size, size, (x, y) => ((x - centre) ** 2 + (y - centre) ** 2 <= radius ** 2 ? colour : WHITE))
}

/** `data:image/png;base64,...` of PNG bytes. */
export function pngDataUri(bytes: Uint8Array): string {
	return `data:image/png;base64,${Buffer.from(bytes).toString('base64')}`
}
