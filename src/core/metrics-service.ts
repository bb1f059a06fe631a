/**
 * @module
 * The metrics use cases: samples pushed by clients, benches the loader runs itself, and the rolling
 * summaries over both. Samples live in the state database (they survive restarts); a bench also writes
 * its summary into the registry's `performance` block, in one locked write.
 */
import { type BenchSpec, runBench } from './bench.ts'
import { compareBytes } from './integrity.ts'
import { ensureBlock, internalModelId } from './entry.ts'
import { InvalidSample } from './errors.ts'
import { type Sample, checkSample, performanceBlock, sampleJson, summarise } from './metrics.ts'
import { BackendClient } from './openai.ts'
import type { BenchResult, MetricsSummary } from './schema.ts'
import { endpointOf } from './select.ts'
import type { Deps } from './service.ts'

/**
 * Record samples a client measured itself (state database only: no registry write per sample).
 * @throws {ModelNotFound} @throws {InvalidSample}
 */
export function addSamples(deps: Deps, name: string, samples: readonly Sample[]): MetricsSummary {
	const entry = deps.store.load().get(name)
	for (const s of samples) {
		const problems = checkSample(s.ttftMs, s.tokensGenerated, s.durationMs)
		if (problems.length) throw new InvalidSample(problems)
	}
	deps.state.addSamples(entry.name, samples, 'client')
	return modelMetrics(deps, entry.name)
}

/** The rolling summary of one model. @throws {ModelNotFound} */
export function modelMetrics(deps: Deps, name: string): MetricsSummary {
	const entry = deps.store.load().get(name)
	const window = deps.settings.metricsWindow
	return summarise(entry.name, deps.state.recentSamples(entry.name, window), window)
}

/** The rolling summaries of every model, sorted by name. */
export function allMetrics(deps: Deps): MetricsSummary[] {
	const window = deps.settings.metricsWindow
	return [...deps.store.load().entries]
		.sort((a, b) => compareBytes(a.name, b.name))
		.map((e) => summarise(e.name, deps.state.recentSamples(e.name, window), window))
}

/** Options of {@link benchModel}. */
export interface BenchOptions {
	timeout?: number | undefined
	onDone?: () => void
	fetch?: typeof fetch
}

/**
 * Measure the model with streamed requests, record the samples, and write the summary. A failed run
 * records nothing.
 * @throws {ModelNotFound} @throws {BackendError}
 */
export async function benchModel(deps: Deps, name: string, spec: BenchSpec, options: BenchOptions = {}): Promise<BenchResult> {
	const entry = deps.store.load().get(name)
	const client = new BackendClient(endpointOf(entry), {
		timeout: options.timeout ?? deps.settings.probeTimeout,
		...(options.fetch ? { fetch: options.fetch } : {})
	})
	const samples = await runBench(client, internalModelId(entry), spec, options.onDone)
	deps.state.addSamples(entry.name, samples, 'bench')
	const summary = modelMetrics(deps, entry.name)
	await deps.store.updateEntry(entry.name, (raw) => {
		Object.assign(ensureBlock(raw, 'performance'), performanceBlock(summary))
	})
	return { name: entry.name, samples: samples.map(sampleJson), summary }
}
