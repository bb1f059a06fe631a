/**
 * The loader's probe, bench and readiness checks against the real llama.cpp server on the tiny
 * random-weight models (port of the loader cases of tests/backend/test_llama_backend.py and
 * tests/backend/test_llama_metrics.py). The models' weights are random, so a probe is conclusive but
 * not `verified`: the image reaches the model and its gibberish answer is graded.
 */
import { beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BackendNotReady } from '../../src/core/errors.ts'
import { prepareImage } from '../../src/core/images.ts'
import { benchModel, modelMetrics } from '../../src/core/metrics-service.ts'
import { probeVision } from '../../src/core/probe-service.ts'
import { selectReady } from '../../src/core/service.ts'
import { runBinary } from '../helpers/binary.ts'
import { rejected } from '../helpers/errors.ts'
import { sharedLlamaServer, startLlamaServer, type LlamaServer } from '../helpers/llama.ts'
import { depsFor, entry, tempDir, writeRegistry } from '../helpers/registry.ts'
import { seeded } from '../helpers/images.ts'

const INSTALL_TIMEOUT = 15 * 60_000

let server: LlamaServer
beforeAll(async () => {
	server = await sharedLlamaServer()
}, INSTALL_TIMEOUT)

/** A registry whose entries (name -> served model id) all point at `endpoint`. */
function backendRegistry(dir: string, endpoint: string, models: Record<string, string>): string {
	return writeRegistry(
		join(dir, 'r.json'),
		Object.entries(models).map(([name, id]) => entry(name, { backend: 'llamacpp', baseUrl: endpoint, servedModelId: id }))
	)
}

const stored = (path: string, index = 0) => (JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>[])[index] as Record<string, any>

describe('probe-vision on the real server', () => {
	test('a probe of the vision model is conclusive, recorded, and repeats its answers', async () => {
		using dir = tempDir()
		const path = backendRegistry(dir.path, server.endpoint, { vision: server.models.vision, text: server.models.text })
		const deps = depsFor(path)
		const first = (await probeVision(deps, 'vision', { random: seeded(3), timeout: 60 })).result
		expect(first.outcome).not.toBe('unknown')
		expect(first.rounds.every((r) => r.answer.length > 0)).toBe(true)
		// The outcome is computed from the model's own answers: the same challenge gives the same answers.
		const again = (await probeVision(deps, 'vision', { random: seeded(3), timeout: 60 })).result
		expect(again.rounds.map((r) => r.answer)).toEqual(first.rounds.map((r) => r.answer))
		const vision = stored(path).probes.vision
		expect(vision.vision_ok).toBe(first.vision_ok)
		expect(vision.probe_version).toBe(first.probe_version)
		expect(vision.latency_ms).toBeGreaterThan(0)
		const round = first.rounds[0] as NonNullable<(typeof first.rounds)[number]>
		expect(vision.notes.startsWith(`round 1: ${round.shape} in ${round.colour}, answered `)).toBe(true)
		expect(deps.state.probeHistory('vision').length).toBe(2)
		deps.state.close()
	})

	test('a probe of the text-only model is not_supported and records vision_ok false', async () => {
		using dir = tempDir()
		const path = backendRegistry(dir.path, server.endpoint, { text: server.models.text })
		const deps = depsFor(path)
		const { result } = await probeVision(deps, 'text', { random: seeded(5), timeout: 60 })
		expect(result.outcome).toBe('not_supported')
		expect(stored(path).probes.vision.vision_ok).toBe(false)
		deps.state.close()
	})

	test("a caller's large JPEG is downscaled, sent, and described", async () => {
		using dir = tempDir()
		const path = backendRegistry(dir.path, server.endpoint, { vision: server.models.vision })
		const deps = depsFor(path)
		const { encodePng } = await import('../../src/core/images.ts')
		const jpeg = await new Bun.Image(encodePng(2000, 1000, () => [30, 160, 60])).jpeg({ quality: 90 }).bytes()
		const image = await prepareImage(jpeg, 'photo.jpg')
		const { result } = await probeVision(deps, 'vision', { image, random: seeded(1), timeout: 60 })
		expect(typeof result.description).toBe('string')
		expect((result.description ?? '').length).toBeGreaterThan(0)
		expect(result.image).toEqual({ mime: 'image/jpeg', width: 1024, height: 512, resized: true, source: 'photo.jpg' })
		deps.state.close()
	})

	test('the CLI probes through the real server and exits 1 for a conclusive not_supported', async () => {
		using dir = tempDir()
		const path = backendRegistry(dir.path, server.endpoint, { text: server.models.text })
		const r = await runBinary(['--registry', path, 'probe-vision', 'text', '--json'])
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 1, stderr: '' })
		expect(JSON.parse(r.stdout).outcome).toBe('not_supported')
	})
})

describe('bench on the real server', () => {
	test('records plausible samples and writes the summary into the registry', async () => {
		using dir = tempDir()
		const path = backendRegistry(dir.path, server.endpoint, { text: server.models.text })
		const deps = depsFor(path)
		const result = await benchModel(deps, 'text', { requests: 4, maxTokens: 16, prompt: 'Say something.', concurrency: 1 })
		expect(result.samples.length).toBe(4)
		for (const s of result.samples) {
			expect(s.ttft_ms).toBeGreaterThan(0)
			expect(s.tokens_generated).toBeGreaterThan(0)
			expect(s.duration_ms).toBeGreaterThanOrEqual(s.ttft_ms)
		}
		expect(result.summary.rolling_samples).toBe(4)
		const average = result.samples.reduce((sum, s) => sum + s.ttft_ms, 0) / 4
		expect(result.summary.ttft_ms_avg).toBeCloseTo(average, 1)
		const performance = stored(path).performance
		expect(performance.rolling_samples).toBe(4)
		expect(performance.ttft_ms_p95).toBeGreaterThanOrEqual(performance.ttft_ms_p50)
		expect(performance.ttft_ms_p50).toBeGreaterThan(0)
		expect(modelMetrics(deps, 'text').rolling_samples).toBe(4)
		deps.state.close()
	})

	test('the CLI benches with --json, and metrics lists the model', async () => {
		using dir = tempDir()
		const path = backendRegistry(dir.path, server.endpoint, { text: server.models.text })
		const r = await runBinary(['--registry', path, 'bench', 'text', '--requests', '3', '--max-tokens', '8', '--json'])
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })
		const body = JSON.parse(r.stdout)
		expect({ samples: body.samples.length, rolling: body.summary.rolling_samples }).toEqual({ samples: 3, rolling: 3 })
		const metrics = await runBinary(['--registry', path, 'metrics'])
		expect(metrics.exitCode).toBe(0)
		expect(metrics.stdout).toMatch(/^text +3 /m)
	})
})

describe('a server that stops', () => {
	test('select --check passes, refuses a model it does not serve, then fails once the server stops', async () => {
		using dir = tempDir()
		await using own = await startLlamaServer()
		const path = backendRegistry(dir.path, own.endpoint, { vision: own.models.vision, ghost: 'not-loaded' })
		const deps = depsFor(path)
		expect((await selectReady(deps, { name: 'vision', checkBackend: true })).name).toBe('vision')
		const ghost = await rejected(BackendNotReady, selectReady(deps, { name: 'ghost', checkBackend: true }))
		expect(ghost.message).toContain('does not serve "not-loaded"')
		const ok = await runBinary(['--registry', path, 'select', 'vision', '--check'])
		expect({ exitCode: ok.exitCode, stderr: ok.stderr }).toEqual({ exitCode: 0, stderr: '' })

		// A probe while it is up is conclusive; after it stops, unknown, and the registry is untouched.
		const first = (await probeVision(deps, 'vision', { random: seeded(2), timeout: 60 })).result
		expect(first.outcome).not.toBe('unknown')
		await own.stop()
		const before = readFileSync(path)
		const after = await probeVision(deps, 'vision', { random: seeded(2), timeout: 60 })
		expect({ outcome: after.result.outcome, code: after.errorCode }).toEqual({ outcome: 'unknown', code: 'backend_unavailable' })
		expect(readFileSync(path).equals(before)).toBe(true)
		expect(deps.state.probeHistory('vision').map((p) => p.outcome)).toEqual(['unknown', first.outcome])

		const down = await rejected(BackendNotReady, selectReady(deps, { name: 'vision', checkBackend: true }))
		expect(down.message).toContain('unavailable')
		const cli = await runBinary(['--registry', path, 'select', 'vision', '--check'])
		expect(cli.exitCode).toBe(1)
		expect(cli.stderr).toContain('not ready')
		deps.state.close()
	}, 120_000)
})
