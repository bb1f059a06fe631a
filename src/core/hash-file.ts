/**
 * @module
 * sha256 of one file with large synchronous reads into one reused buffer: measured on this kind of
 * machine as the fastest plain loop (1 MiB buffers hash at the one-core SHA-256 limit). Shared by the
 * main thread (small models) and the hashing workers (large ones).
 */
import { closeSync, openSync, readSync } from 'node:fs'

const CHUNK = 1 << 20
/** Progress is reported at most this often, in bytes, so messages stay cheap next to hashing. */
const REPORT_EVERY = 16 << 20

/** The sha256 hex digest of the file at `path`; `onProgress` gets byte counts as they are hashed. */
export function hashFileSync(path: string, onProgress?: (bytes: number) => void): string {
	const fd = openSync(path, 'r')
	try {
		const hasher = new Bun.CryptoHasher('sha256')
		const buffer = new Uint8Array(CHUNK)
		let pending = 0
		for (;;) {
			const n = readSync(fd, buffer, 0, CHUNK, null)
			if (n === 0) break
			hasher.update(n === CHUNK ? buffer : buffer.subarray(0, n))
			pending += n
			if (onProgress && pending >= REPORT_EVERY) {
				onProgress(pending)
				pending = 0
			}
		}
		if (onProgress && pending) onProgress(pending)
		return hasher.digest('hex')
	} finally {
		closeSync(fd)
	}
}
