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
import type { Stats } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LoaderError, RegistryInvalid, RegistryNotFound, RegistryWriteError } from './errors.ts'
import { type ElementSpan, locateElements, sameJson, scanJson, shiftSpans, spliceElement, withMembers } from './json-text.ts'
import { Registry, duplicateProblems, entryLabel, entryProblems, parseRegistry, parseTrustedRegistry } from './registry.ts'
import type { RegistryEntry } from './schema.ts'
import type { WriteLock } from './state.ts'

interface FileText {
	text: string
	stamp: string
}

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
	/** See {@link shareStatsWithinATurn}: the stamp read in this turn of the event loop, if any. */
	#turnStamp: string | undefined
	#shareStats = false

	constructor(
		readonly path: string,
		readonly lock: WriteLock
	) {}

	/**
	 * For a server: one stat of the file serves every request handled in the same turn of the event loop,
	 * instead of one stat per request (the stat was a fifth of a select's cost). A request still sees every
	 * write that finished before its turn began, and this store's own writes at once; a sequential client
	 * always sees its last write. Not for in-process callers, whose calls may share a turn with their writes.
	 */
	shareStatsWithinATurn(): void {
		this.#shareStats = true
	}

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
		if (this.#turnStamp !== undefined) return this.#turnStamp
		let stamp: string
		try {
			stamp = stampOf(statSync(this.path))
		} catch (error) {
			throw this.#readError(error)
		}
		if (this.#shareStats) {
			this.#turnStamp = stamp
			setImmediate(() => (this.#turnStamp = undefined))
		}
		return stamp
	}

	#readError(error: unknown): LoaderError {
		const code = (error as NodeJS.ErrnoException).code
		if (code === 'ENOENT' || code === 'ENOTDIR') return new RegistryNotFound(this.path)
		if (code === 'EISDIR') return new RegistryInvalid(this.path, ['is a directory, not a JSON file'])
		if (code === 'EACCES' || code === 'EPERM') return new RegistryInvalid(this.path, ['is not readable (permission denied)'])
		return new RegistryInvalid(this.path, [`cannot be read (${(error as Error).message})`])
	}

	/**
	 * Read and validate the file unless its bytes equal the last validated ones, or unless `layoutFor` knows
	 * its stamp (a writer recorded the file as valid, with its element offsets).
	 */
	#read(layoutFor?: (stamp: string) => Uint32Array | undefined, file: FileText = this.#readText()): Snapshot {
		const { text, stamp } = file
		const cached = this.#current
		if (cached && cached.text === text) {
			this.#current = { ...cached, stamp }
		} else {
			try {
				const layout = layoutFor?.(stamp)
				const trusted = layout && parseTrustedRegistry(text, this.path)
				this.#current =
					trusted && layout.length === 2 * trusted.entries.length
						? { registry: trusted, text, stamp, spans: spansOf(layout) }
						: { registry: parseRegistry(text, this.path), text, stamp }
			} catch (error) {
				if (error instanceof LoaderError) this.#failed = { stamp, error }
				throw error
			}
		}
		this.#lastGood = this.#current
		this.#failed = undefined
		return this.#current
	}

	/** The file's text and the stamp of the very file that was read. @throws {LoaderError} */
	#readText(): FileText {
		let text: string
		let stamp: string
		try {
			const fd = openSync(this.path, 'r')
			try {
				// The stamp of the file that was opened, not of whatever the path names a moment later (a rename).
				stamp = stampOf(fstatSync(fd))
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
		return { text, stamp }
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
			const layoutFor = (stamp: string) => this.lock.layoutFor?.(stamp)
			// A process that has not read the registry yet (a CLI write) reads only the one entry when the last
			// writer recorded this very file as valid; anyone else goes through the snapshot.
			const file = this.#current ? undefined : this.#readText()
			const quick = file && this.#findInLayout(file, name)
			const snapshot = quick ? undefined : this.#read(layoutFor, file)
			const old = (quick ?? snapshot) as FileText
			const index = quick ? quick.index : (snapshot as Snapshot).registry.indexOf(name)
			const before = (quick ? quick.entry : (snapshot as Snapshot).registry.entries[index]) as Record<string, unknown>
			const after = structuredClone(before)
			const result = change(after)
			const problems = entryProblems(after, index)
			if (problems.length) throw new RegistryInvalid(this.path, problems)
			const renamed = before['name'] !== after['name'] || !sameJson(before['model_aliases'], after['model_aliases'])
			// Every entry is needed to refuse a clashing rename, and to keep a snapshot for later reads.
			let entries: RegistryEntry[] | undefined
			if (snapshot || renamed) {
				entries = [...(snapshot?.registry ?? parseTrustedRegistry(old.text, this.path)).entries]
				entries[index] = after as RegistryEntry
			}
			if (renamed) {
				const clashes = duplicateProblems(entries as RegistryEntry[])
				if (clashes.length) throw new RegistryInvalid(this.path, clashes)
			}
			const oldSpans = quick ? quick.spans : ((snapshot as Snapshot).spans ??= this.#spans(old.text, (snapshot as Snapshot).registry.entries.length))
			const located = oldSpans[index]
			const span = located && withMembers(old.text, located)
			if (!span?.members) throw new RegistryInvalid(this.path, [`${entryLabel(index, before)}: cannot be located in the file`])
			const text = spliceElement(old.text, span, { before, after })
			const inode = this.#writeAtomically(text)
			const spans = shiftSpans(oldSpans, index, text, text.length - old.text.length)
			this.#turnStamp = undefined // the file just changed: this turn's stat is out of date
			const written = statSync(this.path)
			const stamp = stampOf(written)
			if (entries) this.#current = this.#lastGood = { registry: new Registry(entries), text, stamp, spans }
			// Only if the path still names the file just written (an editor may have replaced it since).
			if (written.ino === inode) this.lock.rememberLayout?.(stamp, offsetsOf(spans))
			return result
		})
	}

	/**
	 * The entry named `name` (or with that alias) read on its own, when the state database holds the layout
	 * of this very file (so the file is valid and names are unique): the elements where the name appears as
	 * a JSON string are parsed, and nothing else. Undefined when that does not find it; the caller then reads
	 * the whole file, which also gives "not found" its suggestions.
	 */
	#findInLayout(file: FileText, name: string): (FileText & { index: number; entry: RegistryEntry; spans: ElementSpan[] }) | undefined {
		const layout = this.lock.layoutFor?.(file.stamp)
		if (!layout || typeof name !== 'string') return undefined
		const needle = JSON.stringify(name)
		const seen = new Set<number>()
		for (let at = file.text.indexOf(needle); at >= 0; at = file.text.indexOf(needle, at + 1)) {
			const index = elementAt(layout, at)
			if (index < 0 || seen.has(index)) continue
			seen.add(index)
			let entry: RegistryEntry
			try {
				entry = JSON.parse(file.text.slice(layout[2 * index], layout[2 * index + 1])) as RegistryEntry
			} catch {
				return undefined // not the file the layout describes after all
			}
			if (entry.name === name || entry.model_aliases?.includes(name)) return { ...file, index, entry, spans: spansOf(layout) }
		}
		return undefined
	}


	#spans(text: string, entries: number): ElementSpan[] {
		// The fast structural pass suffices for a file that parsed; the full scanner is the fallback.
		const fast = locateElements(text)
		if (fast && fast.length === entries && fast.every((e) => e.members)) return fast
		const scanned = scanJson(text)
		if (!scanned.ok || !scanned.elements) throw new RegistryInvalid(this.path, ['cannot be scanned for writing'])
		return scanned.elements
	}
	/**
	 * Temp file in the same folder, write, fsync, rename, fsync the folder. The old file stays on error.
	 * @returns the inode of the file written
	 */
	#writeAtomically(text: string): number {
		const folder = dirname(this.path)
		const tmp = join(folder, `.${basename(this.path)}.${process.pid}.${Date.now()}.tmp`)
		let mode = 0o644
		try {
			mode = statSync(this.path).mode & 0o777
		} catch {
			// a new file gets the default mode
		}
		let created = false
		let inode: number
		try {
			const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode)
			created = true
			try {
				const bytes = Buffer.from(text, 'utf8')
				let written = 0
				while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written)
				fsyncSync(fd)
				inode = fstatSync(fd).ino
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
		return inode
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

/** Element bounds as stored by `WriteLock.rememberLayout`: start and end of each element. */
function offsetsOf(spans: readonly ElementSpan[]): Uint32Array {
	const offsets = new Uint32Array(spans.length * 2)
	spans.forEach((span, i) => {
		offsets[2 * i] = span.start
		offsets[2 * i + 1] = span.end
	})
	return offsets
}

/** The element whose bounds hold `offset` (binary search), or -1. */
function elementAt(offsets: Uint32Array, offset: number): number {
	let lo = 0
	let hi = offsets.length / 2 - 1
	while (lo <= hi) {
		const mid = (lo + hi) >> 1
		if (offset < (offsets[2 * mid] as number)) hi = mid - 1
		else if (offset >= (offsets[2 * mid + 1] as number)) lo = mid + 1
		else return mid
	}
	return -1
}

function spansOf(offsets: Uint32Array): ElementSpan[] {
	const spans: ElementSpan[] = []
	for (let i = 0; i < offsets.length; i += 2) spans.push({ start: offsets[i] as number, end: offsets[i + 1] as number, members: null })
	return spans
}

/**
 * What changes when the file does: its mtime, ctime, size and inode. Plain (not bigint) stats: checked on
 * every request, and a bigint stat costs a third more; the ms-with-fraction times keep sub-microsecond
 * precision, and every write of ours renames a new inode into place anyway.
 */
function stampOf(st: Stats): string {
	return `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}`
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
