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
import { FFIType, dlopen, ptr } from 'bun:ffi'
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs'

const CHUNK = 1 << 20
/** Bytes mapped at a time. */
const WINDOW = 8 << 20
/** Without madvise, mapped windows leave memory only when their buffers are collected: this often. */
const COLLECT_EVERY = 64 << 20
const MADV_DONTNEED = 4 // the same on Linux and macOS
/** Why a file may not map although it reads: no write access (Bun.mmap opens read-write), or no mmap. */
const UNMAPPABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'ETXTBSY', 'EINVAL', 'ENODEV'])

type Release = (window: Uint8Array) => void
let release: Release | null | undefined

/**
 * Drops a hashed window's pages from this process's memory (`madvise(MADV_DONTNEED)`; the page cache keeps
 * them), so the resident set stays one window however big the file. Null where libc cannot be opened.
 */
function pageRelease(): Release | null {
	if (release !== undefined) return release
	release = null
	const names = process.platform === 'darwin' ? ['libc.dylib'] : ['libc.so.6', `libc.musl-${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`]
	for (const name of names) {
		try {
			const libc = dlopen(name, { madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 } })
			release = (window) => void libc.symbols.madvise(ptr(window), window.byteLength, MADV_DONTNEED)
			break
		} catch {
			// not this libc
		}
	}
	return release
}
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
 * Falls back to {@link hashFileSync} where mapping is not available (Windows, special files, and files
 * this process may not open for writing, which Bun.mmap requires).
 * @throws {FileChangedError} when the file was replaced, or its size or mtime moved, while it was hashed
 */
export function hashFileMapped(path: string, onProgress?: (bytes: number) => void): string {
	const fd = openSync(path, 'r')
	try {
		const before = fstatSync(fd, { bigint: true })
		const size = Number(before.size)
		if (!before.isFile() || process.platform === 'win32') return hashFileSync(path, onProgress)
		const hasher = new Bun.CryptoHasher('sha256')
		const drop = pageRelease()
		let sinceCollect = 0
		for (let offset = 0; offset < size; offset += WINDOW) {
			const length = Math.min(WINDOW, size - offset)
			let window: Uint8Array
			try {
				window = Bun.mmap(path, { offset, size: length, shared: false })
			} catch (error) {
				// Bun.mmap opens the file for writing: a read-only file or file system is read instead.
				if (offset === 0 && UNMAPPABLE.has((error as NodeJS.ErrnoException).code ?? '')) return hashFileSync(path, onProgress)
				throw error
			}
			hasher.update(window)
			if (drop) drop(window)
			else if ((sinceCollect += length) >= COLLECT_EVERY) {
				Bun.gc(true)
				sinceCollect = 0
			}
			onProgress?.(length)
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
