/** Rolling speed summaries: exact percentiles, the throughput formula, the window, plausibility checks. */
import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { type Sample, checkSample, percentile, performanceBlock, sampleJson, summarise, throughput } from '../../src/core/metrics.ts'
import { StateDb } from '../../src/core/state.ts'
import { tempDir } from '../helpers/registry.ts'

const s = (ttftMs: number, tokensGenerated: number, durationMs: number, at = 0): Sample => ({ ttftMs, tokensGenerated, durationMs, at })

describe('percentile()', () => {
	const oneTo100 = Array.from({ length: 100 }, (_, i) => i + 1)
	test.each([
		[[10], 50, 10],
		[[10], 95, 10],
		[[1, 2, 3, 4], 50, 2.5],
		[[1, 2, 3, 4], 95, 3.85],
		[[1, 2, 3, 4], 0, 1],
		[[1, 2, 3, 4], 100, 4],
		[[5, 1, 4, 2, 3], 50, 3],
		[oneTo100, 95, 95.05],
		[[100, 200], 95, 195]
	].map(([values, q, expected]) => [`of ${values === oneTo100 ? '1..100' : JSON.stringify(values)} at q=${q} is ${expected}`, values as number[], q as number, expected as number] as const))(
		'%s (linear interpolation)',
		(_label, values, q, expected) => {
			expect(percentile(values, q)).toBeCloseTo(expected, 12)
		}
	)

	test("matches numpy's default (linear, type 7)", () => {
		const data = [3.7, 1.2, 9.9, 4.4, 4.4, 0.1, 7.3, 2.2, 8.8, 5.0, 6.1]
		// float(numpy.percentile(data, q)) with numpy 2.4.6, for q = 0, 5, 50, 95, 99, 100
		const numpy = [0.1, 0.65, 4.4, 9.350000000000001, 9.790000000000001, 9.9]
		const ours = [0, 5, 50, 95, 99, 100].map((q) => percentile(data, q))
		ours.forEach((value, i) => expect(value).toBeCloseTo(numpy[i] as number, 12))
	})

	test('does not reorder its input, and refuses no values', () => {
		const values = [3, 1, 2]
		percentile(values, 50)
		expect(values).toEqual([3, 1, 2])
		expect(() => percentile([], 50)).toThrow(RangeError)
	})
})

describe('throughput()', () => {
	test('counts the tokens after the first over the time after the first', () => {
		expect(throughput(s(200, 11, 1200))).toBeCloseTo(10, 12) // 10 tokens after the first in 1 s
		expect([throughput(s(200, 1, 1200)), throughput(s(200, 5, 200)), throughput(s(200, 0, 1200))]).toEqual([null, null, null])
	})
})

describe('summarise()', () => {
	test('summarises fixed data exactly', () => {
		const samples = [s(100, 11, 1100, 1), s(300, 21, 2300, 2), s(200, 6, 700, 3)]
		expect(summarise('m', samples, 50)).toEqual({
			name: 'm',
			window: 50,
			rolling_samples: 3,
			ttft_ms_avg: 200,
			ttft_ms_p50: 200,
			ttft_ms_p95: 290,
			throughput_toks_per_s_avg: 10,
			last_sample: { ttft_ms: 200, tokens_generated: 6, duration_ms: 700, at: '1970-01-01T00:00:03+00:00' }
		})
	})

	test('keeps only the newest samples of the window', () => {
		const samples = Array.from({ length: 100 }, (_, i) => s(i + 1, 2, i + 11, i + 1))
		const m = summarise('m', samples, 50)
		expect({ rolling: m.rolling_samples, avg: m.ttft_ms_avg, p50: m.ttft_ms_p50 }).toEqual({ rolling: 50, avg: 75.5, p50: 75.5 })
		expect(m.last_sample?.ttft_ms).toBe(100)
	})

	test('an empty window has nulls, not zeros', () => {
		expect(summarise('m', [], 50)).toEqual({
			name: 'm',
			window: 50,
			rolling_samples: 0,
			ttft_ms_avg: null,
			ttft_ms_p50: null,
			ttft_ms_p95: null,
			throughput_toks_per_s_avg: null,
			last_sample: null
		})
	})

	test('samples without a throughput leave it out of the average, or null when none has one', () => {
		expect(summarise('m', [s(100, 11, 1100), s(100, 1, 500)]).throughput_toks_per_s_avg).toBe(10)
		expect(summarise('m', [s(100, 1, 500)]).throughput_toks_per_s_avg).toBeNull()
	})

	test('rounds to microseconds, and performanceBlock keeps the summary fields imageworks writes', () => {
		const m = summarise('m', [s(1 / 3, 2, 2 / 3, 1.9)])
		expect(m.last_sample).toEqual({ ttft_ms: 0.333, tokens_generated: 2, duration_ms: 0.667, at: '1970-01-01T00:00:01+00:00' })
		expect(sampleJson(s(12.34567, 3, 99.99999, 86400))).toEqual({ ttft_ms: 12.346, tokens_generated: 3, duration_ms: 100, at: '1970-01-02T00:00:00+00:00' })
		expect(Object.keys(performanceBlock(m))).toEqual([
			'rolling_samples',
			'ttft_ms_avg',
			'ttft_ms_p50',
			'ttft_ms_p95',
			'throughput_toks_per_s_avg',
			'last_sample'
		])
	})
})

describe('StateDb samples', () => {
	test('the window drops the oldest, and samples survive reopening the database', () => {
		using dir = tempDir()
		const path = join(dir.path, 'state.sqlite')
		const db = new StateDb(path)
		db.addSamples('m', Array.from({ length: 60 }, (_, i) => s(i, 2, 100, i)), 'bench')
		db.addSamples('other', [s(1, 2, 3, 4)], 'client')
		db.close()
		const again = new StateDb(path)
		try {
			expect(again.recentSamples('m', 50).map((x) => x.ttftMs)).toEqual(Array.from({ length: 50 }, (_, i) => i + 10))
			expect(again.recentSamples('other', 50)).toEqual([s(1, 2, 3, 4)])
			expect(again.recentSamples('nobody', 50)).toEqual([])
		} finally {
			again.close()
		}
	})

	test('a database that does not exist yet reads as no samples and is not created by reading', () => {
		using dir = tempDir()
		const db = new StateDb(join(dir.path, 'none.sqlite'))
		expect(db.recentSamples('m', 50)).toEqual([])
		expect(Bun.file(join(dir.path, 'none.sqlite')).size).toBe(0)
		db.close()
	})
})

describe('checkSample()', () => {
	test.each([
		[-1, 5, 10, 'ttft_ms must not be negative'],
		[5, -1, 10, 'tokens_generated must be between'],
		[20, 5, 10, 'must not exceed duration_ms'],
		[Number.NaN, 5, 10, 'finite'],
		[1, 5, Number.POSITIVE_INFINITY, 'finite'],
		[1, 2.5, 10, 'integer'],
		[1, 5, 1e12, 'over a day'],
		['fast', 5, 10, 'ttft_ms must be a finite number'],
		[1, '5', 10, 'tokens_generated must be an integer']
	])('ttft %p, tokens %p, duration %p: %s', (ttft, tokens, duration, problem) => {
		const problems = checkSample(ttft, tokens, duration)
		expect({ problems, found: problems.some((p) => p.includes(problem)) }).toEqual({ problems, found: true })
	})

	test('a plausible sample passes', () => {
		expect([checkSample(0, 0, 0.5), checkSample(12.5, 100, 900), checkSample(0, 1, 0)]).toEqual([[], [], []])
	})

	test('every problem is named at once', () => {
		expect(checkSample(-1, -1, Number.NaN)).toEqual([
			'ttft_ms must not be negative',
			'duration_ms must be a finite number',
			'tokens_generated must be between 0 and 10,000,000'
		])
	})
})
