/**
 * @module
 * Measure a model: streamed chat completions the loader sends and times itself.
 *
 * Time to first token is when the first chunk carrying a content delta arrives (a role-only chunk does not
 * count; an empty-string delta does, since llama.cpp sends one for a token that ends mid-character).
 * Tokens are the backend's `usage.completion_tokens` when it reports them, else the content chunks.
 */
import { BackendUnavailable } from './errors.ts'
import type { Sample } from './metrics.ts'
import type { BackendClient } from './openai.ts'

export const DEFAULT_PROMPT = 'Write one short sentence about the sea.'

/** What to send. */
export interface BenchSpec {
	requests: number
	maxTokens: number
	prompt: string
	concurrency: number
}

export const DEFAULT_BENCH: BenchSpec = { requests: 10, maxTokens: 64, prompt: DEFAULT_PROMPT, concurrency: 1 }

/** One streamed request, timed from sending to the final chunk. */
export async function measureOnce(client: BackendClient, modelId: string, spec: Pick<BenchSpec, 'prompt' | 'maxTokens'>): Promise<Sample> {
	const started = performance.now()
	let first: number | undefined
	let last = started
	let chunks = 0
	let usageTokens: number | undefined
	for await (const event of client.streamChat(modelId, [{ role: 'user', content: spec.prompt }], { maxTokens: spec.maxTokens })) {
		last = event.at
		if (event.content !== null) {
			chunks++
			first ??= event.at
		}
		const completion = event.usage?.['completion_tokens']
		if (typeof completion === 'number' && Number.isInteger(completion)) usageTokens = completion
	}
	if (first === undefined) throw new BackendUnavailable(client.endpoint, 'the stream finished without any content chunk')
	return { ttftMs: first - started, tokensGenerated: usageTokens ?? chunks, durationMs: last - started, at: Date.now() / 1000 }
}

/**
 * `spec.requests` measurements, `spec.concurrency` at a time; any failure fails the whole run. After a
 * failure no request is started, and the run settles only once the requests in flight have ended, so
 * nothing keeps talking to the backend after the caller has been told.
 * @throws {BackendError}
 */
export async function runBench(client: BackendClient, modelId: string, spec: BenchSpec, onDone?: () => void): Promise<Sample[]> {
	const samples: Sample[] = new Array(spec.requests)
	let next = 0
	let failed: { error: unknown } | undefined
	const worker = async () => {
		while (next < spec.requests && !failed) {
			const i = next++
			try {
				samples[i] = await measureOnce(client, modelId, spec)
			} catch (error) {
				failed ??= { error }
				return
			}
			onDone?.()
		}
	}
	await Promise.all(Array.from({ length: Math.max(1, Math.min(spec.concurrency, spec.requests)) }, worker))
	if (failed) throw failed.error
	return samples
}
