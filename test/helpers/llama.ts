/**
 * A real model server for the tests, with no model download: llama-cpp-python's OpenAI-compatible server
 * (`python -m llama_cpp.server`) on three tiny random-weight GGUF models that the suite generates
 * (test/backend/gguf_models.py): a llama text model with a ChatML template, the same model with a
 * LLaVA-style CLIP projector, and a BERT embedder. Answers are deterministic gibberish at temperature 0,
 * but the inference path (tokenizer, chat template, image encoder) is the real one.
 *
 * `startLlamaServer()` gives a server of one's own (`await using`); `sharedLlamaServer()` gives the one
 * server a bun test process shares (as the Python suite's session fixture did). Either way the server
 * runs in its own process group under test/backend/tether.py, so it dies with the test process even when
 * no hook gets to run.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { cleanEnv } from './binary.ts'
import { BACKEND_DIR, ensureVenv, FIXTURES, run, sha256File, spawnTethered } from './python.ts'

/** The aliases the server serves; a request picks one with its `model` field. */
export interface LlamaModels {
	text: string
	vision: string
	embedding: string
}

/** A running llama.cpp server. */
export interface LlamaServer {
	/** OpenAI base URL: `http://127.0.0.1:PORT/v1`. */
	endpoint: string
	port: number
	/** Process group id (the tether's pid). */
	pid: number
	models: LlamaModels
	/** Everything the server printed so far. */
	log(): string
	/** SIGTERM to the whole process group, SIGKILL after a grace period; idempotent. */
	stop(): Promise<void>
	[Symbol.asyncDispose](): Promise<void>
}

/**
 * The folder of the GGUF fixtures, named after the generator's hash: a change to gguf_models.py makes
 * new fixtures, and unchanged ones are reused across runs (test/.fixtures is git-ignored).
 */
export function fixturesDir(): string {
	return join(FIXTURES, `models-${sha256File(join(BACKEND_DIR, 'gguf_models.py')).slice(0, 12)}`)
}

/**
 * A new folder for a server's config and log: test/.fixtures/servers/<pid of this process>-<n>. A stopped
 * server's folder is removed; folders of processes that are gone (killed, or a shared server that ended
 * with its test run) are removed here.
 */
function runDir(): string {
	const servers = join(FIXTURES, 'servers')
	mkdirSync(servers, { recursive: true })
	for (const name of readdirSync(servers)) {
		const owner = Number(name.split('-')[0])
		if (owner !== process.pid && !processAlive(owner)) rmSync(join(servers, name), { recursive: true, force: true })
	}
	return mkdtempSync(join(servers, `${process.pid}-`))
}

function processAlive(pid: number): boolean {
	try {
		process.kill(pid, 0)
		return true
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM'
	}
}

/** A free loopback port (bound and released; the server binds it a moment later). */
async function freePort(): Promise<number> {
	const server = createServer()
	await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
	const address = server.address()
	await new Promise<void>(resolve => server.close(() => resolve()))
	if (address === null || typeof address === 'string') throw new Error('no port')
	return address.port
}

/**
 * Start a llama.cpp server of one's own on a free loopback port and wait (at most `timeoutMs`) until
 * `GET /v1/models` answers with the three aliases. Needs the venv: on a fresh clone the first call
 * compiles llama.cpp, so call it from a hook with a timeout of several minutes.
 */
export async function startLlamaServer(options: { timeoutMs?: number } = {}): Promise<LlamaServer> {
	const python = await ensureVenv()
	const dir = runDir()
	const config = join(dir, 'config.json')
	const port = await freePort()
	// Writes the fixtures when missing, then the server's config; prints the aliases.
	const said = await run([python, join(BACKEND_DIR, 'llama_server.py'), '--fixtures', fixturesDir(), '--port', String(port), '--config', config], {
		env: cleanEnv()
	})
	const models = JSON.parse(said) as LlamaModels
	const child = spawnTethered([python, '-m', 'llama_cpp.server', '--config_file', config], {
		log: join(dir, 'server.log'),
		env: cleanEnv({ PYTHONUNBUFFERED: '1' })
	})
	const endpoint = `http://127.0.0.1:${port}/v1`
	let exitCode: number | undefined
	void child.exited.then(code => (exitCode = code))
	const stop = async () => {
		await child.stop()
		rmSync(dir, { recursive: true, force: true })
	}
	const fail = async (why: string): Promise<never> => {
		const log = child.logTail(4000)
		await child.stop() // keeps the folder, for the log
		throw new Error(`llama.cpp server on port ${port} ${why}; log ${join(dir, 'server.log')}:\n${log}`)
	}

	const deadline = Date.now() + (options.timeoutMs ?? 60_000)
	for (;;) {
		if (exitCode !== undefined) await fail(`exited with ${exitCode} before it was ready`)
		const ids = await servedIds(endpoint)
		if (ids) {
			const want = [models.text, models.vision, models.embedding]
			if (JSON.stringify(ids) !== JSON.stringify(want)) await fail(`serves ${ids.join(', ')} instead of ${want.join(', ')}`)
			break
		}
		if (Date.now() > deadline) await fail(`not ready after ${options.timeoutMs ?? 60_000} ms`)
		await Promise.race([Bun.sleep(50), child.exited])
	}
	return {
		endpoint,
		port,
		pid: child.pid,
		models,
		log: () => child.logTail(Number.MAX_SAFE_INTEGER),
		stop,
		[Symbol.asyncDispose]: stop
	}
}

/** The model ids `GET /v1/models` lists, or undefined while the server does not answer it. */
async function servedIds(endpoint: string): Promise<string[] | undefined> {
	try {
		const res = await fetch(`${endpoint}/models`, { signal: AbortSignal.timeout(2000) })
		if (!res.ok) return undefined
		return ((await res.json()) as { data: { id: string }[] }).data.map(m => m.id)
	} catch {
		return undefined // not listening yet
	}
}

let shared: Promise<LlamaServer> | undefined

/**
 * The server this bun test process shares across test files, started on first use. It is borrowed:
 * `stop()` and disposal do nothing; it ends with the test process (its tether sees the pipe close).
 */
export function sharedLlamaServer(): Promise<LlamaServer> {
	shared ??= startLlamaServer().then(server => {
		const borrowed = async () => {}
		return { ...server, stop: borrowed, [Symbol.asyncDispose]: borrowed }
	})
	return shared
}
