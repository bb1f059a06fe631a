/**
 * @module
 * sha256 of one file, two ways:
 *
 * - {@link hashFileSync}: large synchronous reads into one reused buffer. Safe anywhere; costs a copy of
 *   every byte out of the page cache (about 14% of the one-core hashing limit, measured here).
 * - {@link hashFileMapped}: hashes the page cache in place through windows mapped with `Bun.mmap`, which
 *   reaches the one-core limit. A file that shrinks while it is mapped kills the process with SIGBUS, so
 *   this runs only in a hashing child process (hash-child.ts), never in the CLI's or the server's own.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs'

const CHUNK = 1 << 20
/** Bytes mapped at a time: small enough that the mapped pages in memory stay a few tens of MB. */
const WINDOW = 16 << 20
/** Mapped windows are unmapped when their buffer is collected; a collection this often bounds the memory. */
const COLLECT_EVERY = 64 << 20
/** Progress is reported at most this often, in bytes, so messages stay cheap next to hashing. */
const REPORT_EVERY = 16 << 20

/** The file changed (size or modification time) while it was being hashed: the digest means nothing. */
export class FileChangedError extends Error {
	override name = 'FileChangedError'
	readonly code = 'ECHANGED'
}

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

/**
 * The sha256 hex digest of the file at `path`, hashed in place through mapped windows.
 * Falls back to {@link hashFileSync} where mapping is not available (Windows, special files).
 * @throws {FileChangedError} when the file was replaced, or its size or mtime moved, while it was hashed
 */
export function hashFileMapped(path: string, onProgress?: (bytes: number) => void): string {
	const fd = openSync(path, 'r')
	try {
		const before = fstatSync(fd, { bigint: true })
		const size = Number(before.size)
		if (!before.isFile() || process.platform === 'win32') return hashFileSync(path, onProgress)
		const hasher = new Bun.CryptoHasher('sha256')
		let sinceCollect = 0
		for (let offset = 0; offset < size; offset += WINDOW) {
			const length = Math.min(WINDOW, size - offset)
			hasher.update(Bun.mmap(path, { offset, size: length, shared: false }))
			onProgress?.(length)
			sinceCollect += length
			if (sinceCollect >= COLLECT_EVERY) {
				Bun.gc(true)
				sinceCollect = 0
			}
		}
		// Windows are mapped by path: the path must still name the same, unchanged file.
		const after = statSync(path, { bigint: true })
		if (after.ino !== before.ino || after.dev !== before.dev || after.size !== before.size || after.mtimeNs !== before.mtimeNs) {
			throw new FileChangedError(`${path} changed while it was being hashed`)
		}
		return hasher.digest('hex')
	} finally {
		closeSync(fd)
	}
}
