/**
 * Load test: mixed list / select / metrics traffic at 64 concurrent connections on loopback, against the
 * compiled binary's `serve`. Bounded in time (--seconds, default 60) and in requests (--max-requests);
 * it stops by itself. It starts its own server on a 1,000-entry registry with a locked 50-file model.
 * Reports requests per second, p50/p99 latency and every error (the goal is zero).
 *
 *     bun scripts/load-test.ts --seconds 60 --connections 64
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = join(import.meta.dir, '..')
export const BINARY = join(ROOT, 'dist', 'imageworks-loader')

/** What a load run measured. */
export interface LoadResult {
	requests: number
	seconds: number
	p50: number
	p99: number
	errors: Record<string, number>
	byKind: Record<string, number>
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
	seconds: number
	connections: number
	maxRequests?: number
}

function percentile(sorted: number[], q: number): number {
	if (!sorted.length) return 0
	const pos = ((sorted.length - 1) * q) / 100
	const lo = Math.floor(pos)
	const hi = Math.min(lo + 1, sorted.length - 1)
	return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo)
}

function run(args: string[]): void {
	const proc = Bun.spawnSync([BINARY, ...args], { stdout: 'pipe', stderr: 'pipe' })
	if (proc.exitCode !== 0) throw new Error(`${args.join(' ')} failed: ${proc.stderr.toString()}`)
}

/** A 1,000-entry registry with a locked, verified 50-file model named "locked". */
export function buildRegistry(folder: string): string {
	const model = join(folder, 'locked-model')
	mkdirSync(model, { recursive: true })
	for (let i = 0; i < 50; i++) writeFileSync(join(model, `part-${String(i).padStart(2, '0')}.bin`), Buffer.alloc(2048, i))
	const entries: unknown[] = [
		{ name: 'locked', backend: 'vllm', backend_config: { model_path: model }, capabilities: { text: true, vision: true }, roles: ['caption'], role_priority: { caption: 1 } }
	]
	for (let i = 0; i < 999; i++) {
		entries.push({
			name: `m-${String(i).padStart(4, '0')}`,
			backend: 'ollama',
			capabilities: { text: true, vision: i % 2 === 0 },
			roles: i % 2 === 0 ? ['caption'] : ['summary'],
			role_priority: { caption: 10 + i }
		})
	}
	const path = join(folder, 'model_registry.json')
	writeFileSync(path, JSON.stringify(entries, null, 2) + '\n')
	run(['--registry', path, 'lock', 'locked', '--set-expected'])
	return path
}

/** Start `serve` on `registry`; resolves with its base URL and a stop function. */
export async function startServe(registry: string): Promise<{ url: string; stop: () => Promise<void> }> {
	const proc = Bun.spawn([BINARY, '--registry', registry, 'serve', '--port', '0'], { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
	const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader()
	let printed = ''
	const deadline = Date.now() + 20_000
	try {
		while (!/:(\d+) /.test(printed)) {
			if (Date.now() > deadline) throw new Error(`serve did not start: ${printed}`)
			const { value, done } = await reader.read()
			if (done) throw new Error(`serve exited: ${printed}${await new Response(proc.stderr).text()}`)
			printed += new TextDecoder().decode(value)
		}
	} catch (error) {
		proc.kill('SIGKILL') // never leave a server behind
		throw error
	}
	void (async () => {
		while (!(await reader.read()).done); // keep draining, so the server never blocks on a full pipe
	})()
	void new Response(proc.stderr).text()
	const port = Number(/:(\d+) /.exec(printed)?.[1])
	return {
		url: `http://127.0.0.1:${port}`,
		stop: async () => {
			proc.kill('SIGTERM')
			await proc.exited
		}
	}
}

/** Mixed traffic from `connections` concurrent loops until the time or request budget runs out. */
export async function runLoad(url: string, options: LoadOptions): Promise<LoadResult> {
	const kinds: [string, () => Promise<Response>][] = [
		['list', () => fetch(`${url}/v1/models`)],
		['list_role', () => fetch(`${url}/v1/models?role=caption`)],
		['select_locked', () => fetch(`${url}/v1/select`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"locked"}' })],
		['select_role', () => fetch(`${url}/v1/select`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"caption","require_capabilities":["vision"]}' })],
		['metrics', () => fetch(`${url}/v1/models/locked/metrics`)]
	]
	const latencies: number[] = []
	const errors: Record<string, number> = {}
	const byKind: Record<string, number> = {}
	const maxRequests = options.maxRequests ?? Number.POSITIVE_INFINITY
	const started = performance.now()
	const until = started + options.seconds * 1000
	let issued = 0
	const loop = async (seed: number) => {
		let i = seed
		while (performance.now() < until && issued < maxRequests) {
			issued++
			const [kind, send] = kinds[i++ % kinds.length] as [string, () => Promise<Response>]
			const t = performance.now()
			try {
				const response = await send()
				await response.arrayBuffer()
				if (response.status !== 200) errors[`${kind} HTTP ${response.status}`] = (errors[`${kind} HTTP ${response.status}`] ?? 0) + 1
				else {
					latencies.push(performance.now() - t)
					byKind[kind] = (byKind[kind] ?? 0) + 1
				}
			} catch (error) {
				const key = `${kind} ${(error as Error).name}`
				errors[key] = (errors[key] ?? 0) + 1
			}
		}
	}
	await Promise.all(Array.from({ length: options.connections }, (_, k) => loop(k)))
	const seconds = (performance.now() - started) / 1000
	latencies.sort((a, b) => a - b)
	return {
		requests: latencies.length + Object.values(errors).reduce((a, b) => a + b, 0),
		seconds,
		p50: percentile(latencies, 50),
		p99: percentile(latencies, 99),
		errors,
		byKind
	}
}

/** One line for people. */
export function describeLoad(r: LoadResult, connections: number): string {
	const errors = Object.values(r.errors).reduce((a, b) => a + b, 0)
	return (
		`load: ${r.requests.toLocaleString('en')} requests in ${r.seconds.toFixed(0)} s at ${connections} connections = ` +
		`${Math.round(r.requests / r.seconds).toLocaleString('en')} req/s; p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms; ` +
		`mix ${JSON.stringify(r.byKind)}; errors ${errors}${errors ? ' ' + JSON.stringify(r.errors) : ''}`
	)
}

if (import.meta.main) {
	const arg = (name: string, fallback: number) => {
		const i = process.argv.indexOf(name)
		return i >= 0 ? Number(process.argv[i + 1]) : fallback
	}
	const seconds = arg('--seconds', 60)
	const connections = arg('--connections', 64)
	const maxRequests = arg('--max-requests', 2_000_000)
	const folder = mkdtempSync(join(tmpdir(), 'iwl-load-'))
	try {
		const registry = buildRegistry(folder)
		const server = await startServe(registry)
		try {
			const result = await runLoad(server.url, { seconds, connections, maxRequests })
			console.log(describeLoad(result, connections))
			process.exitCode = Object.keys(result.errors).length ? 1 : 0
		} finally {
			await server.stop()
		}
	} finally {
		rmSync(folder, { recursive: true, force: true })
	}
}
