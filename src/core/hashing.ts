/**
 * @module
 * Hash many files at the speed of the disk and the CPU: one Bun Worker per core, biggest files first,
 * each worker hashing whole files with {@link hashFileSync}. Small sets are hashed on the calling thread,
 * where starting workers would cost more than it saves.
 */
import { availableParallelism } from 'node:os'
import { hashFileSync } from './hash-file.ts'

/** A file to hash: where to read it and how big it is (to hand out the biggest first). */
export interface HashJob {
	path: string
	abspath: string
	size: bigint
}

/** Options of {@link hashFiles}. */
export interface HashOptions {
	/** Number of workers; default: the machine's cores. */
	workers?: number
	/** Called with byte counts as they are hashed. */
	onProgress?: (bytes: number) => void
}

/** Below this many bytes in all, workers are not worth starting (each costs a few milliseconds). */
const WORKER_THRESHOLD = 64n << 20n

// Inside the compiled binary every module shares the entry's URL (/$bunfs/root/<binary>) and the worker,
// a second entry point (scripts/build.ts), sits at ./core/ from there; from source it sits beside this file.
const WORKER_URL = import.meta.url.startsWith('file:///$bunfs/')
	? './core/hash-worker.ts'
	: new URL('./hash-worker.ts', import.meta.url).href

/** An error from reading a file while hashing, with the file's manifest path. */
export class HashReadError extends Error {
	override name = 'HashReadError'
	constructor(
		readonly path: string,
		readonly code: string,
		message: string
	) {
		super(message)
	}
}

/**
 * sha256 of every job, as `{path: hex digest}`.
 * @throws {HashReadError} when a file cannot be read (gone, unreadable)
 */
export async function hashFiles(jobs: readonly HashJob[], options: HashOptions = {}): Promise<Map<string, string>> {
	const todo = [...jobs].sort((a, b) => (b.size > a.size ? 1 : b.size < a.size ? -1 : 0))
	const total = todo.reduce((sum, j) => sum + j.size, 0n)
	const workers = Math.max(1, Math.min(options.workers ?? availableParallelism(), todo.length))
	if (workers === 1 || total < WORKER_THRESHOLD) return hashOnThisThread(todo, options.onProgress)
	return hashInWorkers(todo, workers, options.onProgress)
}

function hashOnThisThread(jobs: HashJob[], onProgress?: (bytes: number) => void): Map<string, string> {
	const result = new Map<string, string>()
	// An error thrown by the callback is the caller's own: passed on as it is, not as a read error.
	let callbackFailed = false
	const report =
		onProgress &&
		((bytes: number) => {
			try {
				onProgress(bytes)
			} catch (error) {
				callbackFailed = true
				throw error
			}
		})
	for (const job of jobs) {
		try {
			result.set(job.path, hashFileSync(job.abspath, report))
		} catch (error) {
			if (callbackFailed) throw error
			const err = error as NodeJS.ErrnoException
			throw new HashReadError(job.path, err.code ?? 'EIO', err.message)
		}
	}
	return result
}

type WorkerMessage =
	| { id: number; progress: number }
	| { id: number; sha256: string }
	| { id: number; error: { code: string; message: string } }

function hashInWorkers(jobs: HashJob[], count: number, onProgress?: (bytes: number) => void): Promise<Map<string, string>> {
	const result = new Map<string, string>()
	const pool: Worker[] = []
	return new Promise<Map<string, string>>((resolve, reject) => {
		let next = 0
		let running = 0
		let failed = false
		const finish = (error?: Error) => {
			for (const w of pool) w.terminate()
			if (error) reject(error)
			else resolve(result)
		}
		const feed = (worker: Worker) => {
			const id = next++
			const job = jobs[id]
			if (!job) return
			running++
			worker.postMessage({ id, path: job.abspath })
		}
		for (let i = 0; i < count; i++) {
			const worker = new Worker(WORKER_URL)
			pool.push(worker)
			worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
				if (failed) return
				const message = event.data
				const job = jobs[message.id] as HashJob
				if ('progress' in message) {
					try {
						onProgress?.(message.progress)
					} catch (error) {
						failed = true // the caller's callback failed: stop the pool and pass its error on
						finish(error as Error)
					}
					return
				}
				running--
				if ('error' in message) {
					failed = true
					finish(new HashReadError(job.path, message.error.code, message.error.message))
					return
				}
				result.set(job.path, message.sha256)
				if (next < jobs.length) feed(worker)
				else if (running === 0) finish()
			}
			worker.onerror = (event) => {
				if (failed) return
				failed = true
				finish(new Error(`hashing worker failed: ${event.message}`))
			}
			feed(worker)
		}
	})
}
