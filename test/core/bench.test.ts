/** Bench timing against the reference streaming server, whose delays are known. */
import { describe, expect, test } from 'bun:test'
import { measureOnce, runBench } from '../../src/core/bench.ts'
import { BackendError, BackendTimeout, BackendUnavailable } from '../../src/core/errors.ts'
import { summarise, throughput } from '../../src/core/metrics.ts'
import { BackendClient } from '../../src/core/openai.ts'
import { rejected } from '../helpers/errors.ts'
import { type Behaviour, referenceBackend, until } from '../helpers/reference-backend.ts'

const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b)
	const mid = sorted.length >> 1
	return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

describe('runBench()', () => {
	test('measured TTFT and throughput are within 25 percent of the truth', async () => {
		// First token after 200 ms, then one every 10 ms: TTFT 200 ms, throughput 100 tokens/s.
		await using ref = referenceBackend({ firstTokenMs: 200, tokenIntervalMs: 10 })
		const client = new BackendClient(ref.endpoint, { timeout: 10 })
		const samples = await runBench(client, 'ref-model', { requests: 5, maxTokens: 30, prompt: 'hi', concurrency: 1 })
		const ttft = median(samples.map((x) => x.ttftMs))
		const rate = median(samples.map((x) => throughput(x) as number))
		expect({ ttft: Math.abs(ttft - 200) / 200 < 0.25, rate: Math.abs(rate - 100) / 100 < 0.25 }).toEqual({ ttft: true, rate: true })
		expect(samples.map((x) => x.tokensGenerated)).toEqual([30, 30, 30, 30, 30]) // from usage
		expect(ref.requests.map((r) => [r['model'], r['stream'], r['max_tokens'], r['stream_options']])).toEqual(
			Array.from({ length: 5 }, () => ['ref-model', true, 30, { include_usage: true }])
		)
	})

	test('a concurrent bench sends every request, that many at a time', async () => {
		await using ref = referenceBackend({ firstTokenMs: 50, tokenIntervalMs: 0 })
		const client = new BackendClient(ref.endpoint, { timeout: 10 })
		const samples = await runBench(client, 'ref-model', { requests: 8, maxTokens: 3, prompt: 'hi', concurrency: 4 })
		expect({ samples: samples.length, requests: ref.requests.length, peak: ref.peakConcurrency() }).toEqual({ samples: 8, requests: 8, peak: 4 })
		expect(summarise('m', samples).rolling_samples).toBe(8)
	})

	test('a failure stops the bench: nothing is still running when it fails, and no request starts after it', async () => {
		await using ref = referenceBackend({ firstTokenMs: 50, tokenIntervalMs: 0 })
		let calls = 0
		// The second request is refused at once while the first is still waiting for its first token.
		const flaky = (async (input: string | URL | Request, init?: RequestInit) => {
			if (++calls !== 2) return fetch(input, init)
			await until(() => ref.inFlight() === 1, 5000, 'the first request to reach the backend')
			return new Response('{"error": {"message": "overloaded"}}', { status: 503 })
		}) as typeof fetch
		const client = new BackendClient(ref.endpoint, { timeout: 5, fetch: flaky })
		const error = await rejected(BackendUnavailable, runBench(client, 'ref-model', { requests: 20, maxTokens: 2, prompt: 'hi', concurrency: 2 }))
		expect(error.message).toContain('HTTP 503: overloaded')
		expect({ inFlight: ref.inFlight(), calls }).toEqual({ inFlight: 0, calls: 2 })
	})

	test('calls onDone once per finished request', async () => {
		await using ref = referenceBackend({ firstTokenMs: 0, tokenIntervalMs: 0 })
		let done = 0
		await runBench(new BackendClient(ref.endpoint, { timeout: 10 }), 'ref-model', { requests: 3, maxTokens: 2, prompt: 'hi', concurrency: 2 }, () => done++)
		expect(done).toBe(3)
	})
})

describe('measureOnce()', () => {
	test('counts tokens from the chunks when the server sends no usage', async () => {
		await using ref = referenceBackend({ firstTokenMs: 0, tokenIntervalMs: 0, streamUsage: false })
		const sample = await measureOnce(new BackendClient(ref.endpoint, { timeout: 10 }), 'ref-model', { prompt: 'hi', maxTokens: 7 })
		expect(sample.tokensGenerated).toBe(7)
		expect(sample.ttftMs).toBeLessThanOrEqual(sample.durationMs)
	})

	const failures: [string, Partial<Behaviour>, new (...args: never[]) => BackendError, string][] = [
		['breaks off mid-stream', { streamBreakAfter: 2, firstTokenMs: 0 }, BackendUnavailable, 'the stream ended without [DONE]'],
		['sends garbage mid-stream', { mode: 'garbage', firstTokenMs: 0 }, BackendUnavailable, 'not JSON'],
		['is slower than the timeout', { firstTokenMs: 3000 }, BackendTimeout, 'did not answer within 0.5s'],
		['answers 500', { mode: 'error500' }, BackendUnavailable, 'HTTP 500'],
		['wants credentials', { mode: 'auth' }, BackendUnavailable, 'HTTP 401']
	]
	test.each(failures)('a backend that %s is a clear error naming the endpoint', async (_what, behaviour, cls, needle) => {
		await using ref = referenceBackend(behaviour)
		const client = new BackendClient(ref.endpoint, { timeout: 0.5 })
		const started = performance.now()
		const error = await rejected(cls, measureOnce(client, 'ref-model', { prompt: 'hi', maxTokens: 10 }))
		expect(error.message).toContain(ref.endpoint)
		expect(error.message).toContain(needle)
		expect(performance.now() - started).toBeLessThan(2500)
	})

	test('a stream with no content chunk at all is an error, not a sample', async () => {
		await using ref = referenceBackend({ streamBreakAfter: 0, firstTokenMs: 0 })
		const error = await rejected(BackendUnavailable, measureOnce(new BackendClient(ref.endpoint, { timeout: 5 }), 'ref-model', { prompt: 'hi', maxTokens: 5 }))
		expect(error.message).toContain('without')
	})
})
