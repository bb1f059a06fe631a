/**
 * The compiled binary as a user runs it: a subprocess with a clean environment (no IMAGEWORKS_*
 * variables leak in from the machine running the tests), and `serve` on a free loopback port.
 */
import { BINARY } from './paths.ts'

/** What a finished command printed, and its exit code. */
export interface RunResult {
	stdout: string
	stderr: string
	exitCode: number
}

/** Options of {@link runBinary}. */
export interface RunOptions {
	cwd?: string
	env?: Record<string, string>
	stdin?: string
}

/** The environment a test subprocess gets: PATH and HOME only, plus what the test adds. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
	const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp' }
	return { ...env, ...extra }
}

/** Run `dist/imageworks-loader ARGS` to completion. */
export async function runBinary(args: string[], options: RunOptions = {}): Promise<RunResult> {
	const proc = Bun.spawn([BINARY, ...args], {
		cwd: options.cwd,
		env: cleanEnv(options.env),
		stdin: options.stdin !== undefined ? new TextEncoder().encode(options.stdin) : 'ignore',
		stdout: 'pipe',
		stderr: 'pipe'
	})
	const [stdout, stderr, exitCode] = await Promise.all([
		new Response(proc.stdout).text(),
		new Response(proc.stderr).text(),
		proc.exited
	])
	return { stdout, stderr, exitCode }
}

/** A running `imageworks-loader serve`, stopped (SIGTERM, then SIGKILL) when the scope ends. */
export interface Server {
	url: string
	port: number
	proc: ReturnType<typeof Bun.spawn>
	/** Everything the server printed so far (stdout and stderr). */
	output(): string
	stop(): Promise<number>
	[Symbol.asyncDispose](): Promise<void>
}

/** Start `serve --port 0` on the registry and wait until it prints its address. */
export async function startServer(
	registryPath: string,
	options: RunOptions & { args?: string[] } = {}
): Promise<Server> {
	const proc = Bun.spawn([BINARY, '--registry', registryPath, 'serve', '--port', '0', ...(options.args ?? [])], {
		cwd: options.cwd,
		env: cleanEnv(options.env),
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe'
	})
	let printed = ''
	const collect = async (stream: ReadableStream<Uint8Array>) => {
		const decoder = new TextDecoder()
		for await (const chunk of stream) printed += decoder.decode(chunk, { stream: true })
	}
	void collect(proc.stdout as ReadableStream<Uint8Array>)
	void collect(proc.stderr as ReadableStream<Uint8Array>)
	const deadline = Date.now() + 20_000
	let port = 0
	while (!port) {
		const match = /on http:\/\/[^\s]+:(\d+)/.exec(printed)
		if (match) port = Number(match[1])
		else if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${printed}`)
		else if (Date.now() > deadline) {
			proc.kill('SIGKILL')
			throw new Error(`server did not start:\n${printed}`)
		} else await Bun.sleep(10)
	}
	const stop = async () => {
		if (proc.exitCode === null) {
			proc.kill('SIGTERM')
			const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
			await proc.exited
			clearTimeout(timer)
		}
		return proc.exitCode ?? -1
	}
	return {
		url: `http://127.0.0.1:${port}`,
		port,
		proc,
		output: () => printed,
		stop,
		[Symbol.asyncDispose]: async () => void (await stop())
	}
}
