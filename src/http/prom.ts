/**
 * @module
 * `GET /metrics` in the Prometheus text format (prom-client): per-model rolling TTFT and throughput and
 * probe outcomes (read from the state database at scrape time, so every loader process sharing a registry
 * reports the same), and this server's own request counts by operation and outcome, and lock violations.
 */
import { Elysia } from 'elysia'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { GatewayRecord } from '../core/gateway.ts'
import { throughput } from '../core/metrics.ts'
import { LoaderError, LockViolation } from '../core/errors.ts'
import { allMetrics } from '../core/metrics-service.ts'
import type { Deps } from '../core/service.ts'

/** Operation counts of this server process. */
export interface Counters {
	/** Run `work` and count it by operation and outcome: `ok`, or the code of the loader error it failed with. */
	counted<T>(operation: 'select' | 'verify' | 'probe_vision' | 'bench', work: () => T): T
	lockViolation(): void
	/** Count and time one gateway request (core/gateway.ts). */
	gatewayRequest(record: GatewayRecord): void
}

/** The registry of metric families and the counters routes bump. */
export function createProm(deps: Deps): { registry: Registry; counters: Counters } {
	const registry = new Registry()
	// Counted in a plain map and handed to prom-client at scrape time: prom-client hashes the label set on
	// every inc(), even through a labelled child, which cost more than a whole select.
	const operationCounts = new Map<string, { operation: string; outcome: string; count: number }>()
	new Counter({
		name: 'imageworks_operations_total',
		help: 'Requests handled by this server, by operation and outcome (ok, or the error code).',
		labelNames: ['operation', 'outcome'],
		registers: [registry],
		collect() {
			this.reset()
			for (const { operation, outcome, count } of operationCounts.values()) this.inc({ operation, outcome }, count)
		}
	})
	const gatewayRequests = new Counter({
		name: 'imageworks_gateway_requests_total',
		help: 'Requests the OpenAI-compatible gateway carried, by registry model and the status the client got.',
		labelNames: ['model', 'status'],
		registers: [registry]
	})
	const gatewayTtft = new Histogram({
		name: 'imageworks_gateway_ttft_seconds',
		help: 'Time to first token of the gateway requests that succeeded (the whole answer when not streamed).',
		labelNames: ['model'],
		buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
		registers: [registry]
	})
	const gatewayThroughput = new Histogram({
		name: 'imageworks_gateway_tokens_per_second',
		help: 'Decode throughput of the gateway requests that succeeded, tokens per second after the first.',
		labelNames: ['model'],
		buckets: [1, 5, 10, 20, 40, 80, 160, 320, 640, 1280],
		registers: [registry]
	})
	const violations = new Counter({
		name: 'imageworks_lock_violations_total',
		help: 'Selects and verifies refused because files did not match the lock.',
		registers: [registry]
	})
	const gauge = (name: string, help: string, pick: (m: ReturnType<typeof allMetrics>[number]) => number | null) =>
		new Gauge({
			name,
			help,
			labelNames: ['model'],
			registers: [registry],
			collect() {
				this.reset()
				for (const m of safeMetrics(deps)) {
					const value = pick(m)
					if (value !== null) this.set({ model: m.name }, value)
				}
			}
		})
	gauge('imageworks_model_rolling_samples', 'Samples in the rolling window.', (m) => m.rolling_samples)
	gauge('imageworks_model_ttft_ms_avg', 'Average time to first token over the rolling window, ms.', (m) => m.ttft_ms_avg)
	gauge('imageworks_model_ttft_ms_p50', 'Median time to first token over the rolling window, ms.', (m) => m.ttft_ms_p50)
	gauge('imageworks_model_ttft_ms_p95', '95th percentile time to first token over the rolling window, ms.', (m) => m.ttft_ms_p95)
	gauge('imageworks_model_throughput_tokens_per_second', 'Average decode throughput over the rolling window.', (m) => m.throughput_toks_per_s_avg)
	new Gauge({
		name: 'imageworks_probe_outcomes',
		help: 'Vision probe attempts recorded in the probe history, by model and outcome.',
		labelNames: ['model', 'outcome'],
		registers: [registry],
		collect() {
			this.reset()
			for (const row of deps.state.probeOutcomeCounts()) this.set({ model: row.model, outcome: row.outcome }, row.count)
		}
	})
	const count = (operation: string, outcome: string) => {
		const key = `${operation}\0${outcome}`
		const row = operationCounts.get(key)
		if (row) row.count++
		else operationCounts.set(key, { operation, outcome, count: 1 })
	}
	const failed = (operation: string, error: unknown) => count(operation, error instanceof LoaderError ? error.code : 'error')
	return {
		registry,
		counters: {
			counted<T>(operation: string, work: () => T): T {
				let result: T
				try {
					result = work()
				} catch (error) {
					failed(operation, error)
					throw error
				}
				if (!(result instanceof Promise)) {
					count(operation, 'ok')
					return result
				}
				return result.then(
					(value: unknown) => {
						count(operation, 'ok')
						return value
					},
					(error: unknown) => {
						failed(operation, error)
						throw error
					}
				) as T // a promise of the same value
			},
			lockViolation: () => violations.inc(),
			gatewayRequest(record) {
				const model = record.model ?? '(unresolved)'
				gatewayRequests.inc({ model, status: String(record.status) })
				if (record.outcome !== 'ok' || !record.model) return
				if (record.ttftMs !== null) gatewayTtft.observe({ model }, record.ttftMs / 1000)
				const tps = throughput({ ttftMs: record.ttftMs ?? record.durationMs, tokensGenerated: record.tokens ?? 0, durationMs: record.durationMs, at: 0 })
				if (tps !== null) gatewayThroughput.observe({ model }, tps)
			}
		}
	}
}

/** The summaries, or none while the registry cannot be read (a scrape must not fail for that). */
function safeMetrics(deps: Deps) {
	try {
		return allMetrics(deps)
	} catch {
		return []
	}
}

/** `GET /metrics`. */
export function promRoutes(registry: Registry) {
	return new Elysia({ name: 'prometheus' }).get(
		'/metrics',
		async () => new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType } }),
		{
			detail: {
				tags: ['health'],
				summary: 'Prometheus metrics',
				description: 'Per-model TTFT and throughput, probe outcomes, operation counts, lock violations (text exposition format).',
				responses: { 200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } } }
			}
		}
	)
}

/** Count lock violations wherever they are thrown from. */
export function countViolations(counters: Counters, error: unknown): void {
	if (error instanceof LockViolation) counters.lockViolation()
}
