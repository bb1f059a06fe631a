/**
 * @module
 * What every benchmark section shares: timing a command, files and registries of a given size, evicting
 * files from the page cache, peak memory of a process tree, wrk runs, and the result rows.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { percentile } from '../../src/core/metrics.ts'

export const ROOT = join(import.meta.dir, '..', '..')
export const BINARY = join(ROOT, 'dist', 'imageworks-loader')
export const DATA = join(ROOT, '.bench-data')
export const MiB = 1 << 20

/** One measured figure: its value, the baseline measured in the same run, and the goal on their ratio. */
export interface Row {
	section: string
	name: string
	/** The figure, formatted with its unit. */
	figure: string
	/** The baseline, formatted, with what it is. */
	baseline: string
	/** figure / baseline in the direction where higher is better (or the plain figure when there is no ratio). */
	value: number
	/** The goal as text, and whether `value` meets it. */
	goal: string
	met: boolean
}

/** The median, by the core's percentile (linear interpolation), as the load test and metrics use it. */
export const median = (xs: readonly number[]): number => percentile(xs, 50)

export { percentile }

/** Wall time of a command in milliseconds; throws with its stderr if it fails. */
export function run(cmd: string[], options: { env?: Record<string, string> } = {}): number {
	const started = performance.now()
	const proc = Bun.spawnSync(cmd, { stdout: 'ignore', stderr: 'pipe', env: options.env ?? { PATH: process.env['PATH'] ?? '' } })
	const ms = performance.now() - started
	if (proc.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (${proc.exitCode}): ${proc.stderr.toString()}`)
	return ms
}

export function timeIt(fn: () => unknown): number {
	const started = performance.now()
	fn()
	return performance.now() - started
}

/** Whether a command exists on PATH. */
export const have = (command: string): boolean => Bun.which(command) !== null

/** A file of `size` random bytes (kept across runs). */
export function ensureFile(path: string, size: number): string {
	if (existsSync(path) && statSync(path).size === size) return path
	mkdirSync(dirname(path), { recursive: true })
	const fd = openSync(path, 'w')
	const block = randomBytes(16 * MiB)
	for (let left = size; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length))
	closeSync(fd)
	return path
}

/** Drop the files from the page cache (POSIX_FADV_DONTNEED, via coreutils dd). */
export function evict(files: readonly string[]): void {
	for (const file of files) run(['dd', `if=${file}`, 'iflag=nocache', 'count=0', 'status=none'])
}

/** A registry of `n` entries shaped like real imageworks entries (kept across runs). */
export function syntheticRegistry(path: string, n: number): string {
	if (existsSync(path)) return path
	const entries = Array.from({ length: n }, (_, i) => {
		const id = String(i).padStart(6, '0')
		return {
			name: `model-${id}_(Q4_K_M)`,
			display_name: `Model ${id} (Q4 K M)`,
			backend: ['vllm', 'ollama', 'lmdeploy', 'llamacpp'][i % 4],
			backend_config: { port: 8000 + (i % 100), model_path: `/srv/models/model-${id}`, extra_args: ['--max-model-len', '4096'] },
			capabilities: { text: true, vision: i % 3 === 0, tools: i % 2 === 0, multimodal: i % 3 === 0 },
			generation_defaults: { temperature: 0.2, top_p: 0.9, max_tokens: 512 },
			artifacts: { aggregate_sha256: '', files: [] },
			version_lock: { locked: false, expected_aggregate_sha256: null, last_verified: null },
			performance: { rolling_samples: 0, ttft_ms_avg: null, throughput_toks_per_s_avg: null, last_sample: null },
			probes: { vision: null },
			served_model_id: `org/model-${id}`,
			model_aliases: [`m${id}`],
			roles: ['caption', 'keywords'].slice(0, 1 + (i % 2)),
			role_priority: { caption: i % 50 },
			deprecated: false,
			metadata: { producer: 'bench', quantization: 'q4_k_m' }
		}
	})
	mkdirSync(dirname(path), { recursive: true })
	writeFileSync(path, JSON.stringify(entries, null, 2) + '\n')
	return path
}

/** The pids of a process and all its descendants, now. */
function tree(pid: number): number[] {
	const out = [pid]
	for (let i = 0; i < out.length; i++) {
		try {
			const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim()
			if (children) out.push(...children.split(/\s+/).map(Number))
		} catch {
			// gone
		}
	}
	return out
}

function highWaterKb(pid: number): number {
	try {
		const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
		return match ? Number(match[1]) : 0
	} catch {
		return 0
	}
}

/**
 * Run `cmd` and report the peak resident memory (VmHWM, polled every 2 ms until exit) of the process itself
 * and of the sum of its whole tree (each process's own peak, so an upper bound on the tree's).
 */
export async function peakMemory(cmd: string[]): Promise<{ ms: number; selfMb: number; treeMb: number; processes: number }> {
	const started = performance.now()
	const proc = Bun.spawn(cmd, { stdout: 'ignore', stderr: 'pipe', env: { PATH: process.env['PATH'] ?? '' } })
	const peaks = new Map<number, number>()
	while (proc.exitCode === null) {
		for (const pid of tree(proc.pid)) {
			const kb = highWaterKb(pid)
			if (kb > (peaks.get(pid) ?? 0)) peaks.set(pid, kb)
		}
		await Bun.sleep(2)
	}
	const ms = performance.now() - started
	if ((await proc.exited) !== 0) throw new Error(`${cmd.join(' ')} failed: ${await new Response(proc.stderr).text()}`)
	let total = 0
	for (const kb of peaks.values()) total += kb
	return { ms, selfMb: (peaks.get(proc.pid) ?? 0) / 1024, treeMb: total / 1024, processes: peaks.size }
}

/** What one wrk run measured. */
export interface WrkResult {
	rps: number
	p50: number
	p99: number
}

const toMs = (value: string, unit: string) => Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 1)

/** wrk at `connections` connections (one wrk thread: the other core is the server's) for `seconds`. */
export function wrk(url: string, options: { connections: number; seconds: number; script?: string }): WrkResult {
	const args = ['wrk', '-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency']
	if (options.script) args.push('-s', options.script)
	const proc = Bun.spawnSync([...args, url], { stdout: 'pipe', stderr: 'pipe' })
	const out = proc.stdout.toString()
	if (proc.exitCode !== 0) throw new Error(`wrk failed: ${proc.stderr.toString()}`)
	if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk saw errors against ${url}:\n${out}`)
	const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
	const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\b/m.exec(out)
	const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\b/m.exec(out)
	if (!rps || !p50 || !p99) throw new Error(`cannot read wrk's output:\n${out}`)
	return { rps: Number(rps[1]), p50: toMs(p50[1] as string, p50[2] as string), p99: toMs(p99[1] as string, p99[2] as string) }
}

/** A wrk script that sends `body` as a JSON POST. */
export function wrkPostScript(path: string, body: string): string {
	writeFileSync(path, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`)
	return path
}

/**
 * A process started in the background, stopped with SIGTERM at the end of the scope (not SIGKILL: nginx's
 * master must live long enough to stop its workers, which SIGKILL would leave behind).
 */
export function background(cmd: string[], options: { cwd?: string } = {}): { proc: Bun.Subprocess; [Symbol.dispose](): void } {
	const proc = Bun.spawn(cmd, { cwd: options.cwd, stdout: 'ignore', stderr: 'ignore' })
	return { proc, [Symbol.dispose]: () => proc.kill('SIGTERM') }
}

/** Wait until `url` answers. */
export async function waitFor(url: string, seconds = 10): Promise<void> {
	const deadline = Date.now() + seconds * 1000
	for (;;) {
		try {
			const res = await fetch(url)
			await res.arrayBuffer()
			return
		} catch (error) {
			if (Date.now() > deadline) throw new Error(`${url} did not answer: ${(error as Error).message}`)
			await Bun.sleep(20)
		}
	}
}

export const fmt = {
	ms: (ms: number) => (ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(ms < 100 ? 1 : 0)} ms`),
	gbps: (bytes: number, ms: number) => `${(bytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s`,
	rps: (rps: number) => `${Math.round(rps).toLocaleString('en-US')} req/s`,
	x: (ratio: number) => `${ratio.toFixed(2)}x`
}
