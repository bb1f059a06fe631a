/**
 * Port of the probe and bench parts of tests/test_reliability.py: model servers that die, hang or send
 * garbage in the middle of a probe or a bench. The outcome is unknown (or the bench fails) within the
 * timeouts, `probes.vision` keeps its last conclusive value, and a failed bench records nothing. (The
 * fifty-process probe is in reliability.test.ts, beside verify, lock and unlock.)
 */
import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { BackendError, BackendTimeout, BackendUnavailable } from '../../src/core/errors.ts'
import { encodePng, prepareImage } from '../../src/core/images.ts'
import { benchModel, modelMetrics } from '../../src/core/metrics-service.ts'
import { probeVision } from '../../src/core/probe-service.ts'
import type { Deps } from '../../src/core/service.ts'
import { backedDeps } from '../helpers/backed.ts'
import { rejected } from '../helpers/errors.ts'
import { type ReferenceBackend, type Behaviour, referenceBackend, until } from '../helpers/reference-backend.ts'
import { entry, readJson, tempDir, writeRegistry } from '../helpers/registry.ts'

type Raw = Record<string, any>

/** A registry with one model "m" served by a reference backend in `behaviour`, and deps over it. */
function served(behaviour: Partial<Behaviour> = {}) {
	const dir = tempDir()
	const ref = referenceBackend(behaviour)
	const registryPath = writeRegistry(join(dir.path, 'r.json'), [entry('m', { baseUrl: ref.endpoint, servedModelId: 'ref-model', extra: { team: 'vision' } })])
	const deps = backedDeps(registryPath)
	return {
		ref,
		deps,
		registryPath,
		bytes: () => readFileSync(registryPath, 'utf8'),
		history: () => deps.state.probeHistory('m').map((p) => p.outcome),
		async [Symbol.asyncDispose]() {
			await ref.stop()
			deps[Symbol.dispose]()
			dir[Symbol.dispose]()
		}
	}
}

/**
 * A fetch that passes requests to the backend and, once the first chat completion has been answered
 * (read in full), calls `then`: the backend changes or dies between the two rounds of the probe.
 */
function afterFirstAnswer(then: () => void | Promise<void>): typeof fetch {
	let answered = 0
	return (async (input: string | URL | Request, init?: RequestInit) => {
		const response = await fetch(input, init)
		const body = await response.arrayBuffer()
		if (++answered === 1) await then()
		return new Response(body, { status: response.status, headers: response.headers })
	}) as typeof fetch
}

/** Probe "m" once so that `probes.vision` is recorded as verified. */
async function verifiedFirst(deps: Deps): Promise<void> {
	const { result } = await probeVision(deps, 'm', { timeout: 5 })
	expect(result.outcome).toBe('verified')
}

describe('a backend failing mid-probe', () => {
	test.each(['garbage', 'hang', 'error500'] as const)('answering %s is unknown within the timeout, and nothing is recorded in the registry', async (mode) => {
		await using s = served({ mode, hangMs: 3000 })
		const before = s.bytes()
		const started = performance.now()
		const { result, errorCode } = await probeVision(s.deps, 'm', { timeout: 0.5 })
		expect(performance.now() - started).toBeLessThan(2500)
		expect({ outcome: result.outcome, vision_ok: result.vision_ok, errorCode }).toEqual({
			outcome: 'unknown',
			vision_ok: null,
			errorCode: mode === 'hang' ? 'backend_timeout' : 'backend_unavailable'
		})
		expect(s.bytes()).toBe(before)
		expect(s.history()).toEqual(['unknown'])
	})

	const midway: [string, (ref: ReferenceBackend) => void | Promise<void>, string][] = [
		['dies', (ref) => ref.stop(), 'backend_unavailable'],
		['starts sending garbage', (ref) => void (ref.behaviour.mode = 'garbage'), 'backend_unavailable'],
		['hangs', (ref) => void Object.assign(ref.behaviour, { mode: 'hang', hangMs: 5000 }), 'backend_timeout'],
		['fails with a 500', (ref) => void (ref.behaviour.mode = 'error500'), 'backend_unavailable']
	]
	test.each(midway)('that %s after the first round leaves vision_ok as it was', async (_what, change, code) => {
		await using s = served()
		await verifiedFirst(s.deps)
		const before = s.bytes()
		const started = performance.now()
		const { result, errorCode } = await probeVision(s.deps, 'm', { timeout: 0.5, fetch: afterFirstAnswer(() => change(s.ref)) })
		expect(performance.now() - started).toBeLessThan(2500)
		expect({ outcome: result.outcome, rounds: result.rounds.map((r) => r.passed), errorCode }).toEqual({ outcome: 'unknown', rounds: [true], errorCode: code })
		expect(s.bytes()).toBe(before)
		expect((readJson<Raw[]>(s.registryPath)[0] as Raw)['probes']['vision']['vision_ok']).toBe(true)
		expect(s.history()).toEqual(['unknown', 'verified'])
	})

	test('a backend that dies while describing the caller image keeps the conclusive challenge result', async () => {
		await using s = served()
		const image = await prepareImage(encodePng(16, 16, () => [30, 160, 60]), 'image_b64')
		let answered = 0
		const dying = (async (input: string | URL | Request, init?: RequestInit) => {
			if (++answered === 3) await s.ref.stop()
			return fetch(input, init)
		}) as typeof fetch
		const { result } = await probeVision(s.deps, 'm', { timeout: 0.5, image, fetch: dying })
		expect({ outcome: result.outcome, description: result.description }).toEqual({ outcome: 'verified', description: null })
		expect(result.error).toStartWith("describing the caller's image failed: Backend")
		expect((readJson<Raw[]>(s.registryPath)[0] as Raw)['probes']['vision']['vision_ok']).toBe(true)
	})
})

describe('a backend failing mid-bench', () => {
	const failures: [string, Partial<Behaviour>, new (...args: never[]) => BackendError, string][] = [
		['breaks off the stream', { firstTokenMs: 0, streamBreakAfter: 3 }, BackendUnavailable, 'the stream ended without [DONE]'],
		['sends garbage in the stream', { firstTokenMs: 0, mode: 'garbage' }, BackendUnavailable, 'not JSON'],
		['stalls after the first token', { firstTokenMs: 0, tokenIntervalMs: 5000 }, BackendTimeout, 'did not answer within 0.5s']
	]
	test.each(failures)('that %s fails the bench, which records nothing', async (_what, behaviour, cls, needle) => {
		await using s = served(behaviour)
		const before = s.bytes()
		const started = performance.now()
		const error = await rejected(cls, benchModel(s.deps, 'm', { requests: 3, maxTokens: 10, prompt: 'hi', concurrency: 1 }, { timeout: 0.5 }))
		expect(performance.now() - started).toBeLessThan(2500)
		expect(error.message).toContain(needle)
		expect(s.bytes()).toBe(before)
		expect(modelMetrics(s.deps, 'm').rolling_samples).toBe(0)
	})

	test('that dies mid-stream, after some requests succeeded, fails the bench and records none of them', async () => {
		await using s = served({ firstTokenMs: 0, tokenIntervalMs: 20 })
		const before = s.bytes()
		const bench = benchModel(s.deps, 'm', { requests: 4, maxTokens: 10, prompt: 'hi', concurrency: 1 }, { timeout: 5 })
		await until(() => s.ref.chunksSent() >= 13, 10_000, 'the second request to be mid-stream') // 10 per request
		await s.ref.stop()
		const error = await rejected(BackendUnavailable, bench)
		expect(error.message).toContain(s.ref.endpoint)
		expect(s.bytes()).toBe(before)
		expect(modelMetrics(s.deps, 'm').rolling_samples).toBe(0)
	})

	test('a failed bench after a good one leaves the good one recorded, unchanged', async () => {
		await using s = served({ firstTokenMs: 0, tokenIntervalMs: 0 })
		const good = await benchModel(s.deps, 'm', { requests: 2, maxTokens: 3, prompt: 'hi', concurrency: 1 })
		const after = s.bytes()
		s.ref.behaviour.mode = 'error500'
		await rejected(BackendUnavailable, benchModel(s.deps, 'm', { requests: 2, maxTokens: 3, prompt: 'hi', concurrency: 1 }, { timeout: 1 }))
		expect(s.bytes()).toBe(after)
		expect(modelMetrics(s.deps, 'm')).toEqual(good.summary)
	})
})
