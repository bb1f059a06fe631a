/**
 * @module
 * The registry file: cached validated reads, and safe read-modify-write cycles.
 *
 * Reads are cheap: a parsed snapshot is reused until the file's (mtime_ns, size, inode) changes, so a
 * running server sees hand edits without a restart, and keeps its last good copy when the file turns bad.
 * A write locks (see {@link WriteLock}), reads the file *as it is on disk*, changes one entry, splices the
 * new entry into the old text (every other byte stays as it was), and writes a temporary file in the same
 * folder which is flushed, fsynced and renamed over the old one. Readers see the old or the new file,
 * never a mix, and a writer killed mid-write leaves the old file behind.
 */
import {
	closeSync,
	fstatSync,
	fsyncSync,
	openSync,
	readdirSync,
	readFileSync,
	renameSync,
	statSync,
	unlinkSync,
	writeSync,
	constants as fsConstants
} from 'node:fs'
import type { BigIntStats } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LoaderError, RegistryInvalid, RegistryNotFound, RegistryWriteError } from './errors.ts'
import { type ElementSpan, locateElements, sameJson, scanJson, shiftSpans, spliceElement } from './json-text.ts'
import { Registry, duplicateProblems, entryLabel, entryProblems, parseRegistry } from './registry.ts'
import type { RegistryEntry } from './schema.ts'
import type { WriteLock } from './state.ts'

interface Snapshot {
	registry: Registry
	text: string
	stamp: string
	spans?: ElementSpan[]
}

/** A registry that may be stale: what a server serves while the file on disk is bad. */
export interface MaybeStale {
	registry: Registry
	/** Why the file on disk could not be used (the registry is then the last good copy). */
	stale?: LoaderError
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Owns one registry file. */
export class RegistryStore {
	#current: Snapshot | undefined
	#lastGood: Snapshot | undefined
	#failed: { stamp: string; error: LoaderError } | undefined

	constructor(
		readonly path: string,
		readonly lock: WriteLock
	) {}

	/**
	 * The registry as it is on disk now; validated again only when the file's bytes changed.
	 * @throws {RegistryNotFound}
	 * @throws {RegistryInvalid}
	 */
	load(): Registry {
		return this.#snapshot().registry
	}

	/** For a running server: the current registry, or the last good one plus the reason it is stale. */
	loadOrLastGood(): MaybeStale {
		try {
			return { registry: this.load() }
		} catch (error) {
			if (!(error instanceof LoaderError) || !this.#lastGood) throw error
			return { registry: this.#lastGood.registry, stale: error }
		}
	}

	#snapshot(): Snapshot {
		const stamp = this.#stamp()
		if (this.#current?.stamp === stamp) return this.#current
		if (this.#failed?.stamp === stamp) throw this.#failed.error
		return this.#read()
	}

	#stamp(): string {
		try {
			return stampOf(statSync(this.path, { bigint: true }))
		} catch (error) {
			throw this.#readError(error)
		}
	}

	#readError(error: unknown): LoaderError {
		const code = (error as NodeJS.ErrnoException).code
		if (code === 'ENOENT' || code === 'ENOTDIR') return new RegistryNotFound(this.path)
		if (code === 'EISDIR') return new RegistryInvalid(this.path, ['is a directory, not a JSON file'])
		if (code === 'EACCES' || code === 'EPERM') return new RegistryInvalid(this.path, ['is not readable (permission denied)'])
		return new RegistryInvalid(this.path, [`cannot be read (${(error as Error).message})`])
	}

	/** Read and validate the file unless its bytes equal the last validated ones. */
	#read(): Snapshot {
		let text: string
		let stamp: string
		try {
			const fd = openSync(this.path, 'r')
			try {
				// The stamp of the file that was opened, not of whatever the path names a moment later (a rename).
				stamp = stampOf(fstatSync(fd, { bigint: true }))
				const bytes = readFileSync(fd)
				try {
					text = utf8.decode(bytes)
				} catch {
					throw new RegistryInvalid(this.path, ['is not valid UTF-8 text'])
				}
			} finally {
				closeSync(fd)
			}
		} catch (error) {
			if (error instanceof LoaderError) {
				this.#failed = { stamp: this.#stampOrEmpty(), error }
				throw error
			}
			throw this.#readError(error)
		}
		const cached = this.#current
		if (cached && cached.text === text) {
			this.#current = { ...cached, stamp }
		} else {
			try {
				this.#current = { registry: parseRegistry(text, this.path), text, stamp }
			} catch (error) {
				if (error instanceof LoaderError) this.#failed = { stamp, error }
				throw error
			}
		}
		this.#lastGood = this.#current
		this.#failed = undefined
		return this.#current
	}

	#stampOrEmpty(): string {
		try {
			return this.#stamp()
		} catch {
			return ''
		}
	}

	/**
	 * Change the entry named `name` (or alias) in one locked read-modify-write cycle.
	 *
	 * `change` gets a private copy of the entry as it is on disk now, under the lock, and changes it in
	 * place; its return value is returned. If the file on disk is invalid, or `change` throws, or the new
	 * entry would not validate, nothing is written. `change` runs inside the lock's transaction, so state
	 * it records in the state database commits or rolls back with the file.
	 * @throws {RegistryInvalid} @throws {RegistryWriteError} @throws {LockTimeout}
	 */
	async updateEntry<T>(name: string, change: (entry: Record<string, unknown>) => T): Promise<T> {
		return this.lock.withWriteLock(() => {
			this.#removeStaleTempFiles()
			const snapshot = this.#read()
			const index = snapshot.registry.indexOf(name)
			const before = snapshot.registry.entries[index] as Record<string, unknown>
			const after = structuredClone(before)
			const result = change(after)
			const problems = entryProblems(after, index)
			if (problems.length) throw new RegistryInvalid(this.path, problems)
			const entries = [...snapshot.registry.entries]
			entries[index] = after as RegistryEntry
			const renamed = before['name'] !== after['name'] || !sameJson(before['model_aliases'], after['model_aliases'])
			if (renamed) {
				const clashes = duplicateProblems(entries)
				if (clashes.length) throw new RegistryInvalid(this.path, clashes)
			}
			snapshot.spans ??= this.#spans(snapshot.text, snapshot.registry.entries.length)
			const span = snapshot.spans[index]
			if (!span?.members) throw new RegistryInvalid(this.path, [`${entryLabel(index, before)}: cannot be located in the file`])
			const text = spliceElement(snapshot.text, span, { before, after })
			this.#writeAtomically(text)
			const registry = new Registry(entries)
			const spans = shiftSpans(snapshot.spans, index, text, text.length - snapshot.text.length)
			this.#current = this.#lastGood = { registry, text, stamp: this.#stamp(), spans }
			return result
		})
	}

	#spans(text: string, entries: number): ElementSpan[] {
		// The fast structural pass suffices for a file that parsed; the full scanner is the fallback.
		const fast = locateElements(text)
		if (fast && fast.length === entries && fast.every((e) => e.members)) return fast
		const scanned = scanJson(text)
		if (!scanned.ok || !scanned.elements) throw new RegistryInvalid(this.path, ['cannot be scanned for writing'])
		return scanned.elements
	}
	/** Temp file in the same folder, write, fsync, rename, fsync the folder. The old file stays on error. */
	#writeAtomically(text: string): void {
		const folder = dirname(this.path)
		const tmp = join(folder, `.${basename(this.path)}.${process.pid}.${Date.now()}.tmp`)
		let mode = 0o644
		try {
			mode = statSync(this.path).mode & 0o777
		} catch {
			// a new file gets the default mode
		}
		let created = false
		try {
			const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode)
			created = true
			try {
				const bytes = Buffer.from(text, 'utf8')
				let written = 0
				while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written)
				fsyncSync(fd)
			} finally {
				closeSync(fd)
			}
			renameSync(tmp, this.path)
			created = false
			const dirFd = openSync(folder, 'r')
			try {
				fsyncSync(dirFd)
			} finally {
				closeSync(dirFd)
			}
		} catch (error) {
			if (created) {
				try {
					unlinkSync(tmp)
				} catch {
					// already gone
				}
			}
			throw new RegistryWriteError(this.path, writeReason(error))
		}
	}

	/** Temp files only exist under the lock, so while we hold it any left over belong to a dead writer. */
	#removeStaleTempFiles(): void {
		const prefix = `.${basename(this.path)}.`
		try {
			for (const name of readdirSync(dirname(this.path))) {
				if (name.startsWith(prefix) && name.endsWith('.tmp')) {
					try {
						unlinkSync(join(dirname(this.path), name))
					} catch {
						// another cleaner got it
					}
				}
			}
		} catch {
			// an unreadable folder fails the write itself, with a clearer message
		}
	}
}

/** What changes when the file does: its mtime, size and inode. */
function stampOf(st: BigIntStats): string {
	return `${st.mtimeNs}:${st.size}:${st.ino}`
}

function writeReason(error: unknown): string {
	const code = (error as NodeJS.ErrnoException).code
	switch (code) {
		case 'ENOSPC':
			return 'the disk is full'
		case 'EDQUOT':
			return 'the disk quota is exceeded'
		case 'EROFS':
			return 'the file system is read-only'
		case 'EACCES':
		case 'EPERM':
			return 'permission denied'
		default:
			return (error as Error).message ?? String(error)
	}
}
