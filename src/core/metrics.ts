/**
 * @module
 * Rolling speed summaries per model: time to first token and tokens per second. Pure functions.
 *
 * A sample is one measured request `{ttft_ms, tokens_generated, duration_ms, at}`. Throughput counts the
 * tokens after the first over the time after the first:
 *
 *     throughput = (tokens_generated - 1) / ((duration_ms - ttft_ms) / 1000)
 *
 * Percentiles interpolate linearly between the two nearest ranks (numpy's default, "type 7"), so they are
 * exact and reproducible on fixed data.
 */
import type { MetricsSummary, SampleOut } from './schema.ts'

export const DEFAULT_WINDOW = 50
const MAX_MS = 24 * 3600 * 1000 // a request longer than a day is a clock error, not a measurement
const MAX_TOKENS = 10_000_000

/** One measured request; `at` is Unix seconds. */
export interface Sample {
	ttftMs: number
	tokensGenerated: number
	durationMs: number
	at: number
}

/** Everything wrong with a sample (empty when it is plausible). */
export function checkSample(ttftMs: unknown, tokensGenerated: unknown, durationMs: unknown): string[] {
	const problems: string[] = []
	for (const [label, value] of [['ttft_ms', ttftMs], ['duration_ms', durationMs]] as const) {
		if (typeof value !== 'number' || !Number.isFinite(value)) problems.push(`${label} must be a finite number`)
		else if (value < 0) problems.push(`${label} must not be negative`)
		else if (value > MAX_MS) problems.push(`${label} is over a day; send milliseconds`)
	}
	if (typeof tokensGenerated !== 'number' || !Number.isInteger(tokensGenerated)) problems.push('tokens_generated must be an integer')
	else if (tokensGenerated < 0 || tokensGenerated > MAX_TOKENS) problems.push(`tokens_generated must be between 0 and ${MAX_TOKENS.toLocaleString('en')}`)
	if (!problems.length && (ttftMs as number) > (durationMs as number)) {
		problems.push('ttft_ms must not exceed duration_ms (the first token cannot come after the end)')
	}
	return problems
}

/** Tokens per second after the first token; null when it is undefined (one token, or no time). */
export function throughput(sample: Sample): number | null {
	const decodeMs = sample.durationMs - sample.ttftMs
	if (sample.tokensGenerated < 2 || decodeMs <= 0) return null
	return (sample.tokensGenerated - 1) / (decodeMs / 1000)
}

/** The q-th percentile (0-100) with linear interpolation between the closest ranks. */
export function percentile(values: readonly number[], q: number): number {
	if (!values.length) throw new RangeError('Cannot take a percentile of no values')
	const ordered = [...values].sort((a, b) => a - b)
	const pos = ((ordered.length - 1) * q) / 100
	const lo = Math.floor(pos)
	const hi = Math.min(lo + 1, ordered.length - 1)
	return (ordered[lo] as number) + ((ordered[hi] as number) - (ordered[lo] as number)) * (pos - lo)
}

const round3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000)

/** An ISO 8601 UTC timestamp to the second, from Unix seconds. */
export function isoUtc(seconds: number): string {
	return new Date(Math.floor(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, '+00:00')
}

/** A sample as JSON: milliseconds rounded to microseconds, the time as ISO 8601 UTC. */
export function sampleJson(sample: Sample): SampleOut {
	return {
		ttft_ms: round3(sample.ttftMs) as number,
		tokens_generated: sample.tokensGenerated,
		duration_ms: round3(sample.durationMs) as number,
		at: isoUtc(sample.at)
	}
}

/** The summary of the last `window` samples (`samples` oldest first). */
export function summarise(name: string, samples: readonly Sample[], window = DEFAULT_WINDOW): MetricsSummary {
	const recent = window > 0 ? samples.slice(-window) : []
	if (!recent.length) {
		return {
			name,
			window,
			rolling_samples: 0,
			ttft_ms_avg: null,
			ttft_ms_p50: null,
			ttft_ms_p95: null,
			throughput_toks_per_s_avg: null,
			last_sample: null
		}
	}
	const ttfts = recent.map((s) => s.ttftMs)
	const rates = recent.map(throughput).filter((r): r is number => r !== null)
	return {
		name,
		window,
		rolling_samples: recent.length,
		ttft_ms_avg: round3(ttfts.reduce((a, b) => a + b, 0) / ttfts.length),
		ttft_ms_p50: round3(percentile(ttfts, 50)),
		ttft_ms_p95: round3(percentile(ttfts, 95)),
		throughput_toks_per_s_avg: rates.length ? round3(rates.reduce((a, b) => a + b, 0) / rates.length) : null,
		last_sample: sampleJson(recent[recent.length - 1] as Sample)
	}
}

/** The registry's `performance` fields (imageworks' names plus the percentiles). */
export function performanceBlock(summary: MetricsSummary): Record<string, unknown> {
	const { rolling_samples, ttft_ms_avg, ttft_ms_p50, ttft_ms_p95, throughput_toks_per_s_avg, last_sample } = summary
	return { rolling_samples, ttft_ms_avg, ttft_ms_p50, ttft_ms_p95, throughput_toks_per_s_avg, last_sample }
}
