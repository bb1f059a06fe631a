/** @module GET and POST /v1/models/{name}/metrics, POST /v1/models/{name}/bench: how fast a model is. */
import { Elysia } from 'elysia'
import { DEFAULT_BENCH } from '../../core/bench.ts'
import { addSamples, benchModel, modelMetrics } from '../../core/metrics-service.ts'
import { BenchResult, MetricsSummary } from '../../core/schema.ts'
import type { Deps } from '../../core/service.ts'
import { BODY_ERRORS, BenchBody, NameParams, SampleIn, responses } from '../model.ts'
import type { Counters } from '../prom.ts'

export function metricsRoutes(deps: Deps, counters: Counters) {
	return new Elysia({ name: 'metrics' })
		.get('/v1/models/:name/metrics', ({ params }) => modelMetrics(deps, params.name), {
			params: NameParams,
			parse: 'json',
			response: responses(MetricsSummary, { 404: 'unknown model' }),
			detail: { tags: ['metrics'], summary: 'Rolling metrics', description: 'TTFT (avg, p50, p95) and throughput over the last samples of the model.' }
		})
		.post(
			'/v1/models/:name/metrics',
			({ params, body }) =>
				addSamples(deps, params.name, [
					{ ttftMs: body.ttft_ms, tokensGenerated: body.tokens_generated, durationMs: body.duration_ms, at: Date.now() / 1000 }
				]),
			{
				params: NameParams,
				parse: 'json',
				body: SampleIn,
				response: responses(MetricsSummary, { ...BODY_ERRORS, 404: 'unknown model', 422: 'invalid or implausible sample' }),
				detail: { tags: ['metrics'], summary: 'Push a sample', description: 'Record a sample a client measured itself; returns the new summary.' }
			}
		)
		.post(
			'/v1/models/:name/bench',
			({ params, body }) =>
				counters.counted('bench', () =>
					benchModel(deps, params.name, {
						requests: body?.requests ?? DEFAULT_BENCH.requests,
						maxTokens: body?.max_tokens ?? DEFAULT_BENCH.maxTokens,
						prompt: body?.prompt ?? DEFAULT_BENCH.prompt,
						concurrency: body?.concurrency ?? DEFAULT_BENCH.concurrency
					})
				),
			{
				params: NameParams,
				parse: 'json',
				body: BenchBody,
				response: responses(BenchResult, { ...BODY_ERRORS, 404: 'unknown model', 502: 'backend unreachable or failing', 504: 'backend timed out' }),
				detail: {
					tags: ['metrics'],
					summary: 'Bench a model',
					description: 'Send streamed chat completions, time them, record the samples and the summary. A failed run records nothing.'
				}
			}
		)
}
