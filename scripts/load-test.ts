/**
 * Load test: mixed list / select / metrics traffic at 64 concurrent connections on loopback, against the
 * compiled binary's `serve` (started as the tests start it). Bounded in time (--seconds, default 60) and in requests (--max-requests);
 * it stops by itself. It starts its own server on a 1,000-entry registry with a locked 50-file model.
 * Reports requests per second, p50/p99 latency and every error (the goal is zero).
 *
 *     bun scripts/load-test.ts --seconds 60 --connections 64
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { percentile } from '../src/core/metrics.ts'
import { startServer } from '../test/helpers/binary.ts'
import { BINARY } from '../test/helpers/paths.ts'


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
	return {
		requests: latencies.length + Object.values(errors).reduce((a, b) => a + b, 0),
		seconds,
		p50: latencies.length ? percentile(latencies, 50) : 0,
		p99: latencies.length ? percentile(latencies, 99) : 0,
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
		await using server = await startServer(registry)
		const result = await runLoad(server.url, { seconds, connections, maxRequests })
		console.log(describeLoad(result, connections))
		process.exitCode = Object.keys(result.errors).length ? 1 : 0
	} finally {
		rmSync(folder, { recursive: true, force: true })
	}
}
