/**
 * Bun scripts in child processes, for tests that need another process on the same files: a writer to
 * SIGKILL, a reader racing the writes, a process that holds the write lock.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cleanEnv } from './binary.ts'

/** The absolute path of a core module, as a string literal for a script's import. */
export function coreModule(module: string): string {
	return JSON.stringify(new URL(`../../src/core/${module}`, import.meta.url).pathname)
}

/** A Bun child process whose stdout can be read line by line. */
export interface Child {
	proc: ReturnType<typeof Bun.spawn>
	/** The next line the child prints (without the newline); throws if it exits first. */
	line(): Promise<string>
	/** Everything printed to stderr so far (read once the child has exited). */
	stderr(): Promise<string>
	[Symbol.asyncDispose](): Promise<void>
}

/** Write `source` to `dir/name` and run it with this Bun: `bun dir/name ...args`. */
export function spawnScript(dir: string, name: string, source: string, args: string[] = [], env: Record<string, string> = {}): Child {
	const script = join(dir, name)
	writeFileSync(script, source)
	const proc = Bun.spawn([process.execPath, script, ...args], {
		env: cleanEnv(env),
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe'
	})
	const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader()
	const decoder = new TextDecoder()
	let buffered = ''
	return {
		proc,
		async line() {
			for (;;) {
				const newline = buffered.indexOf('\n')
				if (newline >= 0) {
					const line = buffered.slice(0, newline)
					buffered = buffered.slice(newline + 1)
					return line
				}
				const { value, done } = await reader.read()
				if (done) {
					const rest = buffered
					buffered = ''
					if (rest) return rest
					throw new Error(`${name} exited (${await proc.exited}) before printing a line:\n${await new Response(proc.stderr as ReadableStream).text()}`)
				}
				buffered += decoder.decode(value, { stream: true })
			}
		},
		stderr: () => new Response(proc.stderr as ReadableStream).text(),
		async [Symbol.asyncDispose]() {
			if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
			await proc.exited
		}
	}
}
