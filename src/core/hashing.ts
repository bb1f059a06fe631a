/**
 * @module
 * Hash many files at the speed of the disk and the CPU: one hashing child process per core (hash-child.ts),
 * biggest files first, each child hashing whole files in place through mapped memory. Children, not
 * Workers, because a mapped file that shrinks kills its process: it may kill a child, never the caller.
 * Small sets are hashed on the calling thread, where starting a process would cost more than it saves.
 */
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { hashFileSync } from './hash-file.ts'
import { HASH_CHILD_ARG } from './hash-child-arg.ts'
import { type HashReply, eachLine } from './hash-child.ts'

/** A file to hash: where to read it and how big it is (to hand out the biggest first). */
export interface HashJob {
	path: string
	abspath: string
	size: bigint
}

/** Options of {@link hashFiles}. */
export interface HashOptions {
	/** Number of hashing processes; default: the machine's cores. */
	processes?: number
	/**
	 * Sets smaller than this many bytes are hashed on the calling thread (default 64 MiB). The server
	 * passes 0, so that its event loop never waits on a hash.
	 */
	inlineBelow?: number
	/** Called with byte counts as they are hashed. */
	onProgress?: (bytes: number) => void
}

/** Below this many bytes in all, a child process is not worth starting (each costs a few milliseconds). */
const INLINE_BELOW = 64 << 20

/** Every hashing child alive in this process, for {@link stopHashing}. */
const live = new Set<Bun.Subprocess>()

/** Stop every hashing child now (a server shutting down): the hashes they were computing fail. */
export function stopHashing(): void {
	for (const child of live) child.kill()
}

/** How to start a hashing child: the binary itself, or from source `bun src/main.ts`. */
function childCommand(): string[] {
	if (import.meta.url.startsWith('file:///$bunfs/')) {
		// /proc/self/exe is this very binary even if the file was replaced since (an upgrade in place)
		return [existsSync('/proc/self/exe') ? '/proc/self/exe' : process.execPath, HASH_CHILD_ARG]
	}
	return [process.execPath, join(import.meta.dir, '..', 'main.ts'), HASH_CHILD_ARG]
}

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
	const processes = Math.max(1, Math.min(options.processes ?? availableParallelism(), todo.length))
	if (total < BigInt(options.inlineBelow ?? INLINE_BELOW)) return hashOnThisThread(todo, options.onProgress)
	return hashInChildren(todo, processes, options.onProgress)
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

/** Why a child that ended in the middle of a job failed it. */
function childDied(job: HashJob, child: Bun.Subprocess): HashReadError {
	if (child.signalCode === 'SIGBUS') return new HashReadError(job.path, 'ECHANGED', `${job.abspath} shrank while it was being hashed`)
	const how = child.signalCode ? `signal ${child.signalCode}` : `exit code ${child.exitCode}`
	return new HashReadError(job.path, 'EIO', `the hashing process ended unexpectedly (${how})`)
}

function hashInChildren(jobs: HashJob[], count: number, onProgress?: (bytes: number) => void): Promise<Map<string, string>> {
	const result = new Map<string, string>()
	const children: Bun.Subprocess[] = []
	const command = childCommand()
	return new Promise<Map<string, string>>((resolve, reject) => {
		let next = 0
		let settled = false
		const settle = (error?: unknown) => {
			if (settled) return
			settled = true
			for (const child of children) child.kill()
			if (error) reject(error)
			else resolve(result)
		}
		const start = () => {
			const child = Bun.spawn(command, { stdin: 'pipe', stdout: 'pipe', stderr: 'ignore' })
			children.push(child)
			live.add(child)
			void child.exited.then(() => live.delete(child))
			let current: number | undefined
			const feed = () => {
				if (next >= jobs.length) {
					current = undefined
					void child.stdin.end()
					return
				}
				current = next++
				child.stdin.write(JSON.stringify({ id: current, path: (jobs[current] as HashJob).abspath }) + '\n')
				void child.stdin.flush()
			}
			const onReply = (line: string) => {
				if (settled) return
				const reply = JSON.parse(line) as HashReply
				const job = jobs[reply.id] as HashJob
				if ('progress' in reply) {
					try {
						onProgress?.(reply.progress)
					} catch (error) {
						settle(error) // the caller's own callback failed: stop and pass its error on as it is
					}
				} else if ('error' in reply) {
					settle(new HashReadError(job.path, reply.error.code, reply.error.message))
				} else {
					result.set(job.path, reply.sha256)
					if (result.size === jobs.length) settle()
					else feed()
				}
			}
			const replies = eachLine(child.stdout, onReply)
			void Promise.all([replies, child.exited]).then(() => {
				if (current !== undefined) settle(childDied(jobs[current] as HashJob, child))
			}, settle)
			feed()
		}
		try {
			for (let i = 0; i < count; i++) start()
		} catch (error) {
			settle(error)
		}
	})
}
