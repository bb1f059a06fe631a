/**
 * Benchmarks of the compiled binary, each figure beside a baseline measured in the same run:
 *
 * - verify of 4 files of 512 MiB (warm page cache) vs `openssl dgst -sha256` over the same files;
 * - cold `list --json` on a 1,000-entry registry and cold `--help`, vs a hello-world binary compiled by
 *   the same Bun (the floor any compiled Bun program pays to start);
 * - loading a 10,000-entry registry (parse + validate + index) vs `JSON.parse` of the same text;
 * - one lock/unlock write on the 10,000-entry registry, cold CLI.
 *
 * Usage: `npm run bench` (builds first), or `bun scripts/bench.ts [--quick]` (--quick: 4 x 64 MiB).
 * Data lives in .bench-data/ (ignored by git) and is reused across runs.
 */
import { existsSync, mkdirSync, openSync, closeSync, writeSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseRegistry } from '../src/core/registry.ts'

const ROOT = join(import.meta.dir, '..')
const BINARY = join(ROOT, 'dist', 'imageworks-loader')
const DATA = join(ROOT, '.bench-data')
const quick = process.argv.includes('--quick')
const MiB = 1 << 20

const median = (xs: number[]) => {
	const s = [...xs].sort((a, b) => a - b)
	const mid = s.length >> 1
	return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** Wall time of a command in milliseconds; throws if it fails. */
function run(cmd: string[]): number {
	const t = performance.now()
	const proc = Bun.spawnSync(cmd, { stdout: 'ignore', stderr: 'pipe', env: { PATH: process.env['PATH'] ?? '' } })
	const ms = performance.now() - t
	if (proc.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed: ${proc.stderr.toString()}`)
	return ms
}

function timeIt(fn: () => unknown): number {
	const t = performance.now()
	fn()
	return performance.now() - t
}

function ensureFile(path: string, size: number): void {
	if (existsSync(path) && statSync(path).size === size) return
	const fd = openSync(path, 'w')
	const block = randomBytes(16 * MiB)
	for (let left = size; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length))
	closeSync(fd)
}

/** A registry of `n` entries shaped like real imageworks entries. */
function syntheticRegistry(path: string, n: number): string {
	if (existsSync(path)) return path
	const entries = Array.from({ length: n }, (_, i) => {
		const id = String(i).padStart(5, '0')
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
	mkdirSync(join(path, '..'), { recursive: true })
	writeFileSync(path, JSON.stringify(entries, null, 2) + '\n')
	return path
}

function report(line: string): void {
	console.log(line)
}

if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run "npm run build" first`)
mkdirSync(DATA, { recursive: true })
report(`imageworks-loader benchmarks, ${new Date().toISOString().slice(0, 10)}, ${navigator.hardwareConcurrency} cores${quick ? ' (quick)' : ''}`)

// ---------------------------------------------------------------- verify vs openssl
{
	const size = (quick ? 64 : 512) * MiB
	const dir = join(DATA, quick ? 'model-4x64' : 'model-4x512')
	mkdirSync(dir, { recursive: true })
	const files = [1, 2, 3, 4].map((i) => join(dir, `shard-${i}.bin`))
	for (const f of files) ensureFile(f, size)
	const registry = join(DATA, 'verify-registry.json')
	writeFileSync(registry, JSON.stringify([{ name: 'big', backend: 'vllm', backend_config: { model_path: dir } }], null, 2))
	run(['cat', ...files]) // warm the page cache
	const rounds = 5
	const ours: number[] = []
	const openssl: number[] = []
	for (let i = 0; i < rounds; i++) {
		ours.push(run([BINARY, '--registry', registry, 'verify', 'big']))
		openssl.push(run(['openssl', 'dgst', '-sha256', ...files]))
	}
	const bytes = 4 * size
	const gbps = (ms: number) => (bytes / 1e9 / (ms / 1000)).toFixed(2)
	const a = median(ours)
	const b = median(openssl)
	report(
		`verify 4 x ${size / MiB} MiB: ${a.toFixed(0)} ms (${gbps(a)} GB/s) vs openssl dgst -sha256 ${b.toFixed(0)} ms ` +
			`(${gbps(b)} GB/s): ${(b / a).toFixed(2)}x openssl (goal >= 1.5x), median of ${rounds}`
	)
}

// ---------------------------------------------------------------- cold CLI
{
	const hello = join(DATA, 'hello-bin')
	if (!existsSync(hello)) {
		writeFileSync(join(DATA, 'hello.ts'), 'console.log("hello")\n')
		const built = Bun.spawnSync([process.execPath, 'build', '--compile', '--bytecode', '--format=esm', join(DATA, 'hello.ts'), '--outfile', hello], {
			stdout: 'ignore',
			stderr: 'pipe'
		})
		if (built.exitCode !== 0) throw new Error(built.stderr.toString())
	}
	const registry = syntheticRegistry(join(DATA, 'reg1k', 'model_registry.json'), 1000)
	const runs = 21
	run([BINARY, '--registry', registry, 'list', '--json'])
	const floor = median(Array.from({ length: runs }, () => run([hello])))
	const list = median(Array.from({ length: runs }, () => run([BINARY, '--registry', registry, 'list', '--json'])))
	const help = median(Array.from({ length: runs }, () => run([BINARY, '--help'])))
	report(
		`cold list --json, 1,000 entries: ${list.toFixed(1)} ms (goal < 60 ms) = ${(list / floor).toFixed(1)}x a hello-world Bun binary (${floor.toFixed(1)} ms), median of ${runs}`
	)
	report(`cold --help: ${help.toFixed(1)} ms (goal < 30 ms) = ${(help / floor).toFixed(1)}x the hello-world binary, median of ${runs}`)
}

// ---------------------------------------------------------------- 10,000 entries
{
	const registry = syntheticRegistry(join(DATA, 'reg10k', 'model_registry.json'), 10_000)
	const text = await Bun.file(registry).text()
	for (let i = 0; i < 3; i++) parseRegistry(text, registry) // warm the JIT like a long-lived server
	const base = median(Array.from({ length: 9 }, () => timeIt(() => JSON.parse(text))))
	const load = median(Array.from({ length: 9 }, () => timeIt(() => parseRegistry(text, registry))))
	report(
		`load 10,000 entries (${(text.length / 1e6).toFixed(1)} MB): ${load.toFixed(0)} ms (goal < 150 ms) = ${(load / base).toFixed(1)}x JSON.parse alone (${base.toFixed(0)} ms), median of 9`
	)
	const cold = median(Array.from({ length: 7 }, () => run([BINARY, '--registry', registry, 'list', '--json'])))
	report(`cold list --json, 10,000 entries: ${cold.toFixed(0)} ms, median of 7`)
	const name = 'model-00042_(Q4_K_M)'
	const writes = Array.from({ length: 7 }, (_, i) => run([BINARY, '--registry', registry, i % 2 ? 'unlock' : 'lock', name]))
	report(`cold lock/unlock write, 10,000 entries (lock, read, validate, splice, fsync, rename): ${median(writes).toFixed(0)} ms, median of 7`)
}
