/**
 * @module
 * Machine-appended state in SQLite (WAL) beside the registry: the stat fingerprints and hashes of the
 * last good verify (later also probe history and metric samples). JSON is for what people edit and
 * review; this database is for what machines append. `configs/model_registry.json` keeps its state in
 * `configs/model_registry.state.sqlite`, so the two travel together. The tables are those of the Python
 * version, so a machine that upgrades keeps what it verified.
 *
 * The database's write transaction is also the registry's inter-process write lock: SQLite holds it with
 * fcntl locks, which the kernel releases when the holder dies, so there is no lock file to go stale.
 */
import { Database } from 'bun:sqlite'
import { accessSync, existsSync, constants as fsConstants } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LockTimeout, RegistryWriteError } from './errors.ts'
import type { Sample } from './metrics.ts'

/** What `stat` says of a file: if any of these changed, its bytes may have changed. */
export interface Fingerprint {
	size: bigint
	mtimeNs: bigint
	ctimeNs: bigint
	inode: bigint
}

/** A fingerprint as one comparable string. */
export function fingerprintKey(fp: Fingerprint): string {
	return `${fp.size}:${fp.mtimeNs}:${fp.ctimeNs}:${fp.inode}`
}

/** One probe attempt, as kept in the probe history. */
export interface ProbeRecord {
	model: string
	kind: string
	/** Unix seconds. */
	at: number
	outcome: string
	latencyMs: number | null
	probeVersion: string | null
	detail: Record<string, unknown>
}

/** What the last successful verify saw of one model. */
export interface VerifiedState {
	aggregate: string
	files: Map<string, Fingerprint>
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS fingerprints (
    model TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    verified_at REAL NOT NULL,
    PRIMARY KEY (model, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verified (
    model TEXT PRIMARY KEY,
    aggregate_sha256 TEXT NOT NULL,
    verified_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    latency_ms REAL,
    probe_version TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS probe_history_model ON probe_history (model, id);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    at REAL NOT NULL,
    ttft_ms REAL NOT NULL,
    tokens_generated INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_model ON samples (model, id);
CREATE TABLE IF NOT EXISTS registry_layout (
    stamp TEXT PRIMARY KEY,
    offsets BLOB NOT NULL
);
`

/**
 * The `source` of a sample whose request failed (the gateway records those too): kept in the history,
 * left out of the rolling window, whose figures describe answers.
 */
export const FAILED_SOURCE = 'gateway_failed'

/** `configs/model_registry.json` -> `configs/model_registry.state.sqlite`. */
export function statePathFor(registryPath: string): string {
	const name = basename(registryPath)
	const stem = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : name
	return join(dirname(registryPath), `${stem}.state.sqlite`)
}

/** Runs a function while holding the registry's inter-process write lock. */
export interface WriteLock {
	/** Run `fn` under the lock; it is released whether `fn` returns or throws. */
	withWriteLock<T>(fn: () => T): Promise<T>
	/**
	 * The element offsets recorded for the registry file with this stamp (see {@link rememberLayout}), if
	 * the last writer left them. Call under the lock.
	 */
	layoutFor?(stamp: string): Uint32Array | undefined
	/**
	 * Record that the registry file with this stamp is valid, with its elements at these offsets (start and
	 * end of each). A writer that finds the same stamp skips validating and scanning the whole file: the
	 * stamp holds the ctime, which no edit can keep. Call under the lock, so it commits with the write.
	 */
	rememberLayout?(stamp: string, offsets: Uint32Array): void
}

/** Options of {@link StateDb}. */
export interface StateDbOptions {
	/** How long to wait for another writer, in seconds. */
	lockTimeout?: number
}

/** The state database of one registry. Opened on first use; reads of a missing database return nothing. */
export class StateDb implements WriteLock {
	#db: Database | undefined
	readonly #lockTimeout: number

	constructor(
		readonly path: string,
		options: StateDbOptions = {}
	) {
		this.#lockTimeout = options.lockTimeout ?? 10
	}

	#open(): Database {
		if (this.#db) return this.#db
		const deadline = Date.now() + this.#lockTimeout * 1000
		for (;;) {
			try {
				const db = new Database(this.path, { create: true, safeIntegers: true, strict: true })
				// A short busy wait inside SQLite; longer waits happen in JS so signals are still handled.
				db.exec('PRAGMA busy_timeout = 25')
				db.exec('PRAGMA journal_mode = WAL')
				db.exec('PRAGMA synchronous = NORMAL')
				db.exec(SCHEMA)
				this.#db = db
				return db
			} catch (error) {
				if (isBusy(error) && Date.now() < deadline) {
					Bun.sleepSync(5)
					continue
				}
				throw new RegistryWriteError(this.path, `cannot open the state database (${describe(error)}${folderProblem(this.path)})`)
			}
		}
	}

	/**
	 * Run `fn` inside one `BEGIN IMMEDIATE` transaction: the registry's write lock. State written by `fn`
	 * commits with it; if `fn` throws, everything it wrote to the database is rolled back.
	 * @throws {LockTimeout} when another process holds the lock past the timeout
	 */
	async withWriteLock<T>(fn: () => T): Promise<T> {
		const db = this.#open()
		const deadline = Date.now() + this.#lockTimeout * 1000
		let delay = 1
		for (;;) {
			try {
				db.exec('BEGIN IMMEDIATE')
				break
			} catch (error) {
				if (!isBusy(error)) throw new RegistryWriteError(this.path, `cannot lock the state database (${describe(error)})`)
				if (Date.now() >= deadline) throw new LockTimeout(this.path, this.#lockTimeout)
				await Bun.sleep(delay)
				delay = Math.min(delay * 2, 20)
			}
		}
		try {
			const result = fn()
			db.exec('COMMIT')
			return result
		} catch (error) {
			if (db.inTransaction) db.exec('ROLLBACK')
			throw error
		}
	}

	layoutFor(stamp: string): Uint32Array | undefined {
		const row = this.#open().query('SELECT offsets FROM registry_layout WHERE stamp = ?').get(stamp) as { offsets: Uint8Array } | null
		if (!row || row.offsets.byteLength % 8 !== 0) return undefined
		return new Uint32Array(row.offsets.slice().buffer)
	}

	rememberLayout(stamp: string, offsets: Uint32Array): void {
		const db = this.#open()
		db.exec('DELETE FROM registry_layout')
		db.query('INSERT INTO registry_layout (stamp, offsets) VALUES (?, ?)').run(stamp, new Uint8Array(offsets.buffer, offsets.byteOffset, offsets.byteLength))
	}

	/** Replace what the last successful verify saw (call inside {@link StateDb.withWriteLock}). */
	recordVerified(model: string, aggregate: string, files: Map<string, { fingerprint: Fingerprint; sha256: string }>): void {
		const db = this.#open()
		const now = Date.now() / 1000
		try {
			db.query('DELETE FROM fingerprints WHERE model = ?').run(model)
			db.query('INSERT OR REPLACE INTO verified VALUES (?, ?, ?)').run(model, aggregate, now)
			const insert = db.query('INSERT INTO fingerprints VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
			for (const [path, { fingerprint: fp, sha256 }] of files) {
				insert.run(model, path, fp.size, fp.mtimeNs, fp.ctimeNs, fp.inode, sha256, now)
			}
		} catch (error) {
			throw new RegistryWriteError(this.path, `state database write failed (${describe(error)})`)
		}
	}

	/** What the last successful verify of `model` saw, or undefined if it was never verified here. */
	verified(model: string): VerifiedState | undefined {
		if (!this.#db && !existsSync(this.path)) return undefined
		const db = this.#open()
		const row = db.query('SELECT aggregate_sha256 FROM verified WHERE model = ?').get(model) as
			| { aggregate_sha256: string }
			| null
		if (!row) return undefined
		const rows = db
			.query('SELECT path, size, mtime_ns, ctime_ns, inode FROM fingerprints WHERE model = ?')
			.all(model) as { path: string; size: bigint; mtime_ns: bigint; ctime_ns: bigint; inode: bigint }[]
		const files = new Map<string, Fingerprint>()
		for (const r of rows) {
			files.set(r.path, { size: BigInt(r.size), mtimeNs: BigInt(r.mtime_ns), ctimeNs: BigInt(r.ctime_ns), inode: BigInt(r.inode) })
		}
		return { aggregate: row.aggregate_sha256, files }
	}

	// ------------------------------------------------------------ probe history

	/** Record one probe attempt, conclusive or not. */
	addProbe(record: ProbeRecord): void {
		this.#write(() =>
			this.#open()
				.query('INSERT INTO probe_history (model, kind, at, outcome, latency_ms, probe_version, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
				.run(record.model, record.kind, record.at, record.outcome, record.latencyMs, record.probeVersion, JSON.stringify(record.detail))
		)
	}

	/** The last `limit` probe attempts of `model`, newest first. */
	probeHistory(model: string, limit = 20): ProbeRecord[] {
		if (!this.#db && !existsSync(this.path)) return []
		const rows = this.#open()
			.query('SELECT model, kind, at, outcome, latency_ms, probe_version, detail FROM probe_history WHERE model = ? ORDER BY id DESC LIMIT ?')
			.all(model, limit) as { model: string; kind: string; at: number; outcome: string; latency_ms: number | null; probe_version: string | null; detail: string | null }[]
		return rows.map((r) => ({
			model: r.model,
			kind: r.kind,
			at: Number(r.at),
			outcome: r.outcome,
			latencyMs: r.latency_ms === null ? null : Number(r.latency_ms),
			probeVersion: r.probe_version,
			detail: JSON.parse(r.detail ?? '{}') as Record<string, unknown>
		}))
	}

	/** How many probe attempts ended in each outcome, per model. */
	probeOutcomeCounts(): { model: string; outcome: string; count: number }[] {
		if (!this.#db && !existsSync(this.path)) return []
		const rows = this.#open().query('SELECT model, outcome, COUNT(*) AS n FROM probe_history GROUP BY model, outcome').all() as {
			model: string
			outcome: string
			n: bigint | number
		}[]
		return rows.map((r) => ({ model: r.model, outcome: r.outcome, count: Number(r.n) }))
	}

	// ------------------------------------------------------------ samples

	/** Record measured samples in one transaction. */
	addSamples(model: string, samples: readonly Sample[], source: string): void {
		this.#write(() => {
			const db = this.#open()
			const insert = db.query('INSERT INTO samples (model, at, ttft_ms, tokens_generated, duration_ms, source) VALUES (?, ?, ?, ?, ?, ?)')
			db.transaction(() => {
				for (const s of samples) insert.run(model, s.at, s.ttftMs, s.tokensGenerated, s.durationMs, source)
			})()
		})
	}

	/** The last `window` samples of `model`, oldest first. */
	recentSamples(model: string, window: number): Sample[] {
		if (!this.#db && !existsSync(this.path)) return []
		const rows = this.#open()
			.query(`SELECT ttft_ms, tokens_generated, duration_ms, at FROM samples WHERE model = ? AND source != '${FAILED_SOURCE}' ORDER BY id DESC LIMIT ?`)
			.all(model, window) as { ttft_ms: number; tokens_generated: bigint | number; duration_ms: number; at: number }[]
		return rows.reverse().map((r) => ({ ttftMs: Number(r.ttft_ms), tokensGenerated: Number(r.tokens_generated), durationMs: Number(r.duration_ms), at: Number(r.at) }))
	}

	#write(fn: () => void): void {
		const deadline = Date.now() + this.#lockTimeout * 1000
		for (;;) {
			try {
				fn()
				return
			} catch (error) {
				if (error instanceof RegistryWriteError) throw error
				if (isBusy(error) && Date.now() < deadline) {
					Bun.sleepSync(2)
					continue
				}
				throw new RegistryWriteError(this.path, `state database write failed (${describe(error)})`)
			}
		}
	}

	/** Close the database (tests and a server's shutdown). */
	close(): void {
		this.#db?.close()
		this.#db = undefined
	}
}

/** Why the database's folder cannot take new files (SQLite's WAL needs two beside the database), or ''. */
function folderProblem(path: string): string {
	try {
		accessSync(dirname(path), fsConstants.W_OK)
		return ''
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code
		if (code === 'EROFS') return '; the file system is read-only'
		return code === 'EACCES' || code === 'EPERM' ? `; permission denied: ${dirname(path)} is not writable` : ''
	}
}

function isBusy(error: unknown): boolean {
	const code = (error as { code?: unknown })?.code
	return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || /database is locked|busy/i.test(describe(error))
}

function describe(error: unknown): string {
	return error instanceof Error ? error.message : String(error)
}
