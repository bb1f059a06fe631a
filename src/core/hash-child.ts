/**
 * @module
 * The hashing child: `imageworks-loader __hash-child` (or `bun src/main.ts __hash-child`). Reads jobs
 * `{"id","path"}` as lines on stdin and answers lines on stdout: `{"id","progress"}` while hashing, then
 * `{"id","sha256"}` or `{"id","error":{"code","message"}}`. Exits when stdin closes.
 *
 * Hashing runs here, in a process of its own, because it maps files into memory ({@link hashFileMapped}):
 * a file truncated under the mapping ends this process with SIGBUS, which the parent reports as a file
 * that changed, instead of taking down the server. The child lowers its own priority so that a verify
 * never slows the requests the parent serves.
 */
import { writeSync } from 'node:fs'
import { setPriority } from 'node:os'
import { hashFileMapped } from './hash-file.ts'


/** A job the parent sends. */
export interface HashRequest {
	id: number
	path: string
}

/** A line the child answers. */
export type HashReply =
	| { id: number; progress: number }
	| { id: number; sha256: string }
	| { id: number; error: { code: string; message: string } }

function send(reply: HashReply): void {
	writeSync(1, JSON.stringify(reply) + '\n') // synchronous: progress must leave while the hash loop runs
}

export async function runHashChild(): Promise<void> {
	try {
		setPriority(10)
	} catch {
		// not permitted here: hash at the normal priority
	}
	const parent = process.ppid
	await eachLine(Bun.stdin.stream(), (line) => {
		const { id, path } = JSON.parse(line) as HashRequest
		try {
			const sha256 = hashFileMapped(path, (progress) => {
				if (process.ppid !== parent) process.exit(1) // orphaned: nobody wants this digest any more
				send({ id, progress })
			})
			send({ id, sha256 })
		} catch (error) {
			const err = error as NodeJS.ErrnoException
			send({ id, error: { code: err.code ?? 'EIO', message: err.message } })
		}
	})
}

/** Calls `onLine` with each line of `stream`, as it arrives: both ends of the hashing protocol read lines. */
export async function eachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
	const decoder = new TextDecoder()
	let buffered = ''
	for await (const chunk of stream) {
		buffered += decoder.decode(chunk, { stream: true })
		let newline: number
		while ((newline = buffered.indexOf('\n')) >= 0) {
			const line = buffered.slice(0, newline)
			buffered = buffered.slice(newline + 1)
			onLine(line)
		}
	}
}
