/**
 * `probe-vision`, `bench`, `metrics` and `select --check` as users run them: the compiled binary in a
 * subprocess, against the reference backend.
 */
import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { backendRegistry } from '../helpers/backed.ts'
import { runBinary, type RunResult } from '../helpers/binary.ts'
import { solidPng } from '../helpers/images.ts'
import { referenceBackend } from '../helpers/reference-backend.ts'
import { readJson, tempDir } from '../helpers/registry.ts'

/** The binary with `--registry PATH` first. */
const cli = (registryPath: string, args: string[], env: Record<string, string> = {}) => runBinary(['--registry', registryPath, ...args], { env })

const outcome = (r: RunResult) => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })

const vision = (registryPath: string) => (readJson<Record<string, any>[]>(registryPath)[0] as Record<string, any>)['probes']?.['vision']

describe('probe-vision', () => {
	test('exits 0 when verified, 1 when not supported or unknown, and records only conclusive outcomes', async () => {
		using dir = tempDir()
		const ref = referenceBackend()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { seeing: 'ref-model' })
		try {
			const verified = await cli(registryPath, ['probe-vision', 'seeing'])
			expect({ exitCode: verified.exitCode, stderr: verified.stderr }).toEqual({ exitCode: 0, stderr: '' })
			const lines = verified.stdout.split('\n')
			expect(lines[0]).toMatch(/^seeing: VERIFIED \(colour-challenge-v1, \d+ ms\)$/)
			expect(lines[1]).toMatch(/^ {2}round 1: \w+ in \w+ +-> "[A-Z][a-z]+\." \[pass\]$/)
			expect(lines[2]).toMatch(/^ {2}round 2: \w+ in \w+ +-> "[A-Z][a-z]+\." \[pass\]$/)
			expect(vision(registryPath).vision_ok).toBe(true)

			ref.behaviour.mode = 'constant'
			const wrong = await cli(registryPath, ['probe-vision', 'seeing', '--json'])
			expect({ exitCode: wrong.exitCode, stderr: wrong.stderr, outcome: JSON.parse(wrong.stdout).outcome }).toEqual({
				exitCode: 1,
				stderr: '',
				outcome: 'not_supported'
			})
			expect(vision(registryPath).vision_ok).toBe(false)
		} finally {
			await ref.stop()
		}
		const down = await cli(registryPath, ['probe-vision', 'seeing', '--timeout', '2'])
		expect({ exitCode: down.exitCode, stderr: down.stderr }).toEqual({ exitCode: 1, stderr: '' })
		expect(down.stdout).toMatch(/^seeing: UNKNOWN /)
		expect(down.stdout).toContain(`Backend ${ref.endpoint} is unavailable: connection refused`)
		expect(down.stdout).toContain('Nothing was recorded in the registry')
		expect(vision(registryPath).vision_ok).toBe(false) // still the last conclusive answer
	})

	test("describes the user's image, refuses a file that is not one, and names an unknown model", async () => {
		using dir = tempDir()
		await using ref = referenceBackend()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { seeing: 'ref-model' })
		const photo = join(dir.path, 'photo.png')
		writeFileSync(photo, solidPng(50, 50, [30, 70, 220]))
		writeFileSync(join(dir.path, 'notes.png'), 'text')

		const described = await cli(registryPath, ['probe-vision', 'seeing', photo])
		expect({ exitCode: described.exitCode, stderr: described.stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(described.stdout).toContain('  description: A picture dominated by blue.\n')

		const notImage = await cli(registryPath, ['probe-vision', 'seeing', join(dir.path, 'notes.png')])
		expect(outcome(notImage)).toEqual({
			exitCode: 2,
			stdout: '',
			stderr: `error: ${join(dir.path, 'notes.png')} is not a readable image. Send a PNG, JPEG, WebP or GIF file\n`
		})
		const missing = await cli(registryPath, ['probe-vision', 'seeing', join(dir.path, 'nothing.png')])
		expect({ exitCode: missing.exitCode, stdout: missing.stdout, stderr: missing.stderr }).toEqual({
			exitCode: 2,
			stdout: '',
			stderr: expect.stringContaining('no such file')
		})
		const nobody = await cli(registryPath, ['probe-vision', 'nobody'])
		expect({ exitCode: nobody.exitCode, stdout: nobody.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(nobody.stderr).toStartWith('error: No model named "nobody"')
		// Only the two successful runs reached the backend: an unknown model is refused before the image is read.
		expect(ref.requests).toHaveLength(3)
	})

	test('IMAGEWORKS_PROBE_TIMEOUT bounds each request, and --timeout wins over it', async () => {
		using dir = tempDir()
		await using ref = referenceBackend({ mode: 'hang', hangMs: 5000 })
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { slow: 'ref-model' })
		const started = performance.now()
		const fromEnv = await cli(registryPath, ['probe-vision', 'slow'], { IMAGEWORKS_PROBE_TIMEOUT: '0.5' })
		expect(performance.now() - started).toBeLessThan(3000)
		expect({ exitCode: fromEnv.exitCode, stderr: fromEnv.stderr }).toEqual({ exitCode: 1, stderr: '' })
		expect(fromEnv.stdout).toContain('did not answer within 0.5s')
		const fromFlag = await cli(registryPath, ['probe-vision', 'slow', '--timeout', '0.3'], { IMAGEWORKS_PROBE_TIMEOUT: '30' })
		expect(fromFlag.stdout).toContain('did not answer within 0.3s')
		expect(vision(registryPath)).toBeUndefined()
	})

	// (`--timeout -1` would be read by cac as an unknown option -1: also exit 2, with another message.)
	test.each([['0'], ['-1'], ['soon']])('--timeout %s is a usage error', async (value) => {
		using dir = tempDir()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), 'http://127.0.0.1:9/v1', { m: 'x' })
		const r = await cli(registryPath, ['probe-vision', 'm', `--timeout=${value}`])
		expect({ exitCode: r.exitCode, stdout: r.stdout, firstLine: r.stderr.split('\n')[0] }).toEqual({
			exitCode: 2,
			stdout: '',
			firstLine: `error: --timeout ${value} is not a positive number of seconds`
		})
	})
})

describe('bench', () => {
	test('--json measures, records and prints the samples and the summary', async () => {
		using dir = tempDir()
		await using ref = referenceBackend({ firstTokenMs: 20, tokenIntervalMs: 1 })
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { m: 'ref-model' })
		const r = await cli(registryPath, ['bench', 'm', '--requests', '3', '--max-tokens', '4', '--concurrency', '2', '--prompt', 'Say hi', '--json'])
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })
		const result = JSON.parse(r.stdout)
		expect({ name: result.name, tokens: result.samples.map((s: any) => s.tokens_generated), rolling: result.summary.rolling_samples }).toEqual({
			name: 'm',
			tokens: [4, 4, 4],
			rolling: 3
		})
		expect(result.summary.ttft_ms_avg).toBeGreaterThanOrEqual(20)
		expect(ref.requests.map((q) => [q['max_tokens'], q['messages'][0].content])).toEqual([
			[4, 'Say hi'],
			[4, 'Say hi'],
			[4, 'Say hi']
		])
		expect(readJson<Record<string, any>[]>(registryPath)[0]?.['performance'].rolling_samples).toBe(3)

		const table = await cli(registryPath, ['metrics'])
		expect({ exitCode: table.exitCode, stderr: table.stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(table.stdout.split('\n')[0]).toMatch(/^NAME +SAMPLES +TTFT AVG ms +TTFT P50 ms +TTFT P95 ms +TOK\/S AVG +LAST SAMPLE$/)
		expect(table.stdout.split('\n')[1]).toMatch(/^m +3 +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +\d{4}-\d\d-\d\dT/)
	})

	test('prints a table of the samples for people', async () => {
		using dir = tempDir()
		await using ref = referenceBackend({ firstTokenMs: 0, tokenIntervalMs: 0 })
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { m: 'ref-model' })
		const r = await cli(registryPath, ['bench', 'm', '-n', '2', '--max-tokens', '3'])
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })
		const lines = r.stdout.split('\n')
		expect(lines[0]).toMatch(/^# +TTFT ms +TOKENS +DURATION ms +TOK\/S$/)
		expect(lines.slice(1, 3).map((l) => l.split(/ +/).slice(0, 1).concat(l.split(/ +/)[2] as string))).toEqual([
			['1', '3'],
			['2', '3']
		])
	})

	test('a dead backend exits 1, names the endpoint and records nothing', async () => {
		using dir = tempDir()
		const ref = referenceBackend()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { m: 'ref-model' })
		await ref.stop()
		const r = await cli(registryPath, ['bench', 'm', '-n', '2'])
		expect(outcome(r)).toEqual({
			exitCode: 1,
			stdout: '',
			stderr: `error: Backend ${ref.endpoint} is unavailable: connection refused. Start the model server or check its host and port in the registry\n`
		})
		const metrics = await cli(registryPath, ['metrics', 'm', '--json'])
		expect(JSON.parse(metrics.stdout).rolling_samples).toBe(0)
	})

	test.each([
		[['--requests', '0'], '--requests 0 must be an integer from 1 to 10000'],
		[['--max-tokens', 'many'], '--max-tokens many must be an integer from 1 to 8192'],
		[['--concurrency', '65'], '--concurrency 65 must be an integer from 1 to 64'],
		[['--timeout', '0'], '--timeout 0 is not a positive number of seconds']
	])('%p is a usage error', async (args, message) => {
		using dir = tempDir()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), 'http://127.0.0.1:9/v1', { m: 'x' })
		const r = await cli(registryPath, ['bench', 'm', ...args])
		expect({ exitCode: r.exitCode, stdout: r.stdout, firstLine: r.stderr.split('\n')[0] }).toEqual({ exitCode: 2, stdout: '', firstLine: `error: ${message}` })
	})
})

describe('metrics', () => {
	test('lists every model, one model, or says the model is unknown', async () => {
		using dir = tempDir()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), 'http://127.0.0.1:9/v1', { b: 'x', a: 'y' })
		const all = await cli(registryPath, ['metrics', '--json'])
		expect({ exitCode: all.exitCode, names: JSON.parse(all.stdout).map((m: any) => m.name) }).toEqual({ exitCode: 0, names: ['a', 'b'] })
		const one = await cli(registryPath, ['metrics', 'a', '--json'])
		expect(JSON.parse(one.stdout)).toEqual({
			name: 'a',
			window: 50,
			rolling_samples: 0,
			ttft_ms_avg: null,
			ttft_ms_p50: null,
			ttft_ms_p95: null,
			throughput_toks_per_s_avg: null,
			last_sample: null
		})
		const windowed = await cli(registryPath, ['metrics', 'a', '--json'], { IMAGEWORKS_METRICS_WINDOW: '7' })
		expect(JSON.parse(windowed.stdout).window).toBe(7)
		const ghost = await cli(registryPath, ['metrics', 'ghost'])
		expect({ exitCode: ghost.exitCode, stdout: ghost.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(ghost.stderr).toStartWith('error: No model named "ghost"')
	})
})

describe('select --check', () => {
	test('exits 0 when the backend serves the model, 1 when it does not or is down', async () => {
		using dir = tempDir()
		const ref = referenceBackend()
		const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { m: 'ref-model', other: 'not-served' })
		try {
			const ok = await cli(registryPath, ['select', 'm', '--check', '--json'])
			expect({ exitCode: ok.exitCode, stderr: ok.stderr, name: JSON.parse(ok.stdout).name }).toEqual({ exitCode: 0, stderr: '', name: 'm' })
			const notServed = await cli(registryPath, ['select', 'other', '--check'])
			expect({ exitCode: notServed.exitCode, stdout: notServed.stdout }).toEqual({ exitCode: 1, stdout: '' })
			expect(notServed.stderr).toContain('does not serve "not-served" (it serves: ref-model)')
		} finally {
			await ref.stop()
		}
		const down = await cli(registryPath, ['select', 'm', '--check'])
		expect({ exitCode: down.exitCode, stdout: down.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(down.stderr).toContain('connection refused')
		const unchecked = await cli(registryPath, ['select', 'm', '--json'])
		expect({ exitCode: unchecked.exitCode, endpoint: JSON.parse(unchecked.stdout).endpoint }).toEqual({ exitCode: 0, endpoint: ref.endpoint })
	})
})
