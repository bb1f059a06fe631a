/** Metrics, bench, Prometheus and backend readiness over HTTP, against the reference backend. */
import { describe, expect, test } from 'bun:test'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { client } from '../helpers/app.ts'
import { backedDeps, backendRegistry } from '../helpers/backed.ts'
import { startServer } from '../helpers/binary.ts'
import { expectError, fetchJson } from '../helpers/http.ts'
import { referenceBackend, silentServer } from '../helpers/reference-backend.ts'
import { entry, readJson, tempDir, writeRegistry } from '../helpers/registry.ts'

// ---------------------------------------------------------------- a strict Prometheus text parser

/** One sample line: `name{label="value",...} value`. */
interface PromSample {
	name: string
	labels: Record<string, string>
	value: number
}

/** One metric family: its HELP and TYPE lines and the samples under them. */
interface PromFamily {
	help: string
	type: string
	samples: PromSample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const NUMBER = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/
const SUFFIXES: Record<string, string[]> = { counter: [''], gauge: [''], untyped: [''], summary: ['', '_sum', '_count'], histogram: ['_bucket', '_sum', '_count'] }

/**
 * Parse the Prometheus text exposition format (0.0.4), strictly: every family has one HELP and one TYPE
 * before its samples, every sample belongs to the family above it, label values are quoted with only
 * the three legal escapes, values are numbers, and no series appears twice. Throws on anything else.
 */
function parseProm(text: string): Map<string, PromFamily> {
	const families = new Map<string, PromFamily>()
	const seen = new Set<string>()
	let current: string | undefined
	if (text && !text.endsWith('\n')) throw new Error('the exposition must end with a newline')
	text.split('\n').forEach((line, i) => {
		const where = `line ${i + 1} ${JSON.stringify(line)}`
		if (line === '') return
		if (line.startsWith('#')) {
			const match = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line)
			if (!match) {
				if (/^#\s*(HELP|TYPE)\b/.test(line)) throw new Error(`malformed ${where}`)
				return // a plain comment
			}
			const [, kind, name = '', rest = ''] = match
			if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in ${where}`)
			const family = families.get(name) ?? { help: '', type: '', samples: [] }
			if (family.samples.length) throw new Error(`${kind} after samples in ${where}`)
			if (kind === 'HELP') {
				if (family.help) throw new Error(`second HELP in ${where}`)
				family.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'))
			} else {
				if (family.type) throw new Error(`second TYPE in ${where}`)
				if (!(rest in SUFFIXES)) throw new Error(`unknown type in ${where}`)
				family.type = rest
			}
			families.set(name, family)
			current = name
			return
		}
		const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? ([^ ]+)(?: (-?\d+))?$/.exec(line)
		if (!head) throw new Error(`malformed sample ${where}`)
		const [, name = '', rawLabels, rawValue = ''] = head
		if (!NUMBER.test(rawValue)) throw new Error(`bad value in ${where}`)
		const labels: Record<string, string> = {}
		if (rawLabels) {
			const body = rawLabels.slice(1, -1)
			const pair = /([^=,"]+)="((?:[^"\\]|\\["\\n])*)"(,|$)/y
			let at = 0
			while (at < body.length) {
				pair.lastIndex = at
				const m = pair.exec(body)
				if (!m) throw new Error(`malformed labels in ${where}`)
				const [, label = '', value = ''] = m
				if (!LABEL_NAME.test(label) || label in labels) throw new Error(`bad or repeated label ${label} in ${where}`)
				labels[label] = value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c))
				at = pair.lastIndex
			}
		}
		const family = current === undefined ? undefined : families.get(current)
		if (!family?.type) throw new Error(`sample without a TYPE above it: ${where}`)
		if (!(SUFFIXES[family.type] ?? []).some((suffix) => name === current + suffix)) throw new Error(`sample of another family: ${where}`)
		const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`
		if (seen.has(series)) throw new Error(`repeated series in ${where}`)
		seen.add(series)
		const value = rawValue.endsWith('Inf') ? (rawValue.startsWith('-') ? -Infinity : Infinity) : Number(rawValue)
		family.samples.push({ name, labels, value })
	})
	for (const [name, family] of families) if (!family.help || !family.type) throw new Error(`family ${name} lacks HELP or TYPE`)
	return families
}

describe('parseProm() (the test parser itself)', () => {
	test('reads families, labels with escapes and special values', () => {
		const text = '# HELP a_total Things.\n# TYPE a_total counter\na_total{k="x\\"y\\\\z",j="1"} 2\n\n# HELP g G.\n# TYPE g gauge\ng +Inf\n'
		expect(Object.fromEntries(parseProm(text))).toEqual({
			a_total: { help: 'Things.', type: 'counter', samples: [{ name: 'a_total', labels: { k: 'x"y\\z', j: '1' }, value: 2 }] },
			g: { help: 'G.', type: 'gauge', samples: [{ name: 'g', labels: {}, value: Infinity }] }
		})
	})

	test.each([
		['a sample without a family', 'x 1\n'],
		['a sample of another family', '# HELP a A.\n# TYPE a gauge\nb 1\n'],
		['an unquoted label', '# HELP a A.\n# TYPE a gauge\na{k=v} 1\n'],
		['a value that is not a number', '# HELP a A.\n# TYPE a gauge\na one\n'],
		['a repeated series', '# HELP a A.\n# TYPE a gauge\na{k="v"} 1\na{k="v"} 2\n'],
		['no final newline', '# HELP a A.\n# TYPE a gauge\na 1'],
		['an unknown type', '# HELP a A.\n# TYPE a meter\n']
	])('refuses %s', (_what, text) => {
		expect(() => parseProm(text)).toThrow()
	})
})

// ---------------------------------------------------------------- the API

/**
 * The Python suite's `ref_api`: a quick streaming reference backend serving "ref-model"; model "m" is
 * served, "other" points at the same backend but is not; a window of 3 samples; 1 s readiness checks.
 */
function refApi() {
	const dir = tempDir()
	const ref = referenceBackend({ firstTokenMs: 20, tokenIntervalMs: 1 })
	const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { m: 'ref-model', other: 'not-served' })
	const deps = backedDeps(registryPath, { imageRoots: [dir.path], metricsWindow: 3, checkTimeout: 1 })
	return {
		call: client(deps),
		ref,
		registryPath,
		bytes: () => readFileSync(registryPath, 'utf8'),
		async [Symbol.asyncDispose]() {
			await ref.stop()
			deps[Symbol.dispose]()
			dir[Symbol.dispose]()
		}
	}
}

describe('GET and POST /v1/models/{name}/metrics', () => {
	test('pushed samples roll through a window of 3', async () => {
		await using s = refApi()
		expect((await s.call('GET', '/v1/models/m/metrics')).body.rolling_samples).toBe(0)
		for (const ttft of [100, 200, 300, 400]) {
			const r = await s.call('POST', '/v1/models/m/metrics', { ttft_ms: ttft, tokens_generated: 11, duration_ms: ttft + 1000 })
			expect({ status: r.status, samples: r.body.rolling_samples }).toEqual({ status: 200, samples: Math.min(3, ttft / 100) })
		}
		const r = await s.call('GET', '/v1/models/m/metrics')
		expect({ status: r.status, body: r.body }).toEqual({
			status: 200,
			body: {
				name: 'm',
				window: 3,
				rolling_samples: 3,
				ttft_ms_avg: 300,
				ttft_ms_p50: 300,
				ttft_ms_p95: 390,
				throughput_toks_per_s_avg: 10,
				last_sample: { ttft_ms: 400, tokens_generated: 11, duration_ms: 1400, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/) }
			}
		})
	})

	test.each([
		['a negative ttft', { ttft_ms: -1, tokens_generated: 1, duration_ms: 10 }, 'invalid_request'],
		['ttft after the end', { ttft_ms: 20, tokens_generated: 1, duration_ms: 10 }, 'invalid_sample'],
		['no token count', { ttft_ms: 1, duration_ms: 10 }, 'invalid_request'],
		['a negative token count', { ttft_ms: 1, tokens_generated: -3, duration_ms: 10 }, 'invalid_request'],
		['a fractional token count', { ttft_ms: 1, tokens_generated: 1.5, duration_ms: 10 }, 'invalid_request'],
		['a ttft that is text', { ttft_ms: 'fast', tokens_generated: 1, duration_ms: 10 }, 'invalid_request'],
		['an unknown field', { ttft_ms: 1, tokens_generated: 1, duration_ms: 10, extra: true }, 'invalid_request'],
		['a duration over a day', { ttft_ms: 1, tokens_generated: 1, duration_ms: 1e12 }, 'invalid_request'],
		['nothing', {}, 'invalid_request'],
		['a list', [{ ttft_ms: 1, tokens_generated: 1, duration_ms: 10 }], 'invalid_request']
	])('a sample with %s is a 422 and is not recorded', async (_what, sample, code) => {
		await using s = refApi()
		const d = expectError(await s.call('POST', '/v1/models/m/metrics', sample), 422, code)
		expect(d['message']).toMatch(/ttft_ms|tokens_generated|duration_ms|extra|body/)
		expect((await s.call('GET', '/v1/models/m/metrics')).body.rolling_samples).toBe(0)
	})

	test('ttft after the end names the problem', async () => {
		await using s = refApi()
		const d = expectError(await s.call('POST', '/v1/models/m/metrics', { ttft_ms: 20, tokens_generated: 1, duration_ms: 10 }), 422, 'invalid_sample')
		expect(d['problems']).toEqual(['ttft_ms must not exceed duration_ms (the first token cannot come after the end)'])
	})

	test('an unknown model is a 404, not an empty summary', async () => {
		await using s = refApi()
		expectError(await s.call('GET', '/v1/models/ghost/metrics'), 404, 'model_not_found')
		expectError(await s.call('POST', '/v1/models/ghost/metrics', { ttft_ms: 1, tokens_generated: 1, duration_ms: 2 }), 404, 'model_not_found')
		expectError(await s.call('POST', '/v1/models/ghost/bench', {}), 404, 'model_not_found')
		expect(s.ref.requests).toEqual([])
	})
})

describe('POST /v1/models/{name}/bench', () => {
	test('records the samples and writes the performance block once, atomically', async () => {
		await using s = refApi()
		const inode = statSync(s.registryPath).ino
		const r = await s.call('POST', '/v1/models/m/bench', { requests: 4, max_tokens: 5, concurrency: 2 })
		expect({ status: r.status, samples: r.body.samples.length, rolling: r.body.summary.rolling_samples, tokens: r.body.samples.map((x: any) => x.tokens_generated) }).toEqual({
			status: 200,
			samples: 4,
			rolling: 3,
			tokens: [5, 5, 5, 5]
		})
		const summary = r.body.summary
		expect(readJson<Record<string, any>[]>(s.registryPath)[0]?.['performance']).toEqual({
			rolling_samples: 3,
			ttft_ms_avg: summary.ttft_ms_avg,
			ttft_ms_p50: summary.ttft_ms_p50,
			ttft_ms_p95: summary.ttft_ms_p95,
			throughput_toks_per_s_avg: summary.throughput_toks_per_s_avg,
			last_sample: summary.last_sample
		})
		expect(statSync(s.registryPath).ino).not.toBe(inode) // replaced by rename, not rewritten in place
		expect({ requests: s.ref.requests.length, peak: s.ref.peakConcurrency() }).toEqual({ requests: 4, peak: 2 })
		expect((await s.call('GET', '/v1/models/m/metrics')).body).toEqual(summary)
	})

	test('against a dead backend is a 502 and records nothing', async () => {
		await using s = refApi()
		const before = s.bytes()
		await s.ref.stop()
		const d = expectError(await s.call('POST', '/v1/models/m/bench', { requests: 2 }), 502, 'backend_unavailable')
		expect(d['message']).toContain(s.ref.endpoint)
		expect(s.bytes()).toBe(before)
		expect((await s.call('GET', '/v1/models/m/metrics')).body.rolling_samples).toBe(0)
	})

	test.each([{ requests: 0 }, { max_tokens: -1 }, { concurrency: 1000 }, { prompt: '' }, { requests: 1.5 }, { speed: 'max' }].map((b) => [JSON.stringify(b), b] as const))(
		'%s is a 422 and sends nothing',
		async (_shown, body) => {
			await using s = refApi()
			expectError(await s.call('POST', '/v1/models/m/bench', body), 422, 'invalid_request')
			expect(s.ref.requests).toEqual([])
		}
	)
})

describe('readiness checks', () => {
	test('select with check_backend asks the backend, and only then', async () => {
		await using s = refApi()
		const ok = await s.call('POST', '/v1/select', { name: 'm', check_backend: true })
		expect({ status: ok.status, name: ok.body.name, endpoint: ok.body.endpoint }).toEqual({ status: 200, name: 'm', endpoint: s.ref.endpoint })
		const missing = expectError(await s.call('POST', '/v1/select', { name: 'other', check_backend: true }), 424, 'backend_not_ready')
		expect({ reason: missing['reason'], message: missing['message'] }).toEqual({
			reason: 'backend_not_serving',
			message: expect.stringContaining('does not serve "not-served" (it serves: ref-model)')
		})
		await s.ref.stop()
		const down = expectError(await s.call('POST', '/v1/select', { name: 'm', check_backend: true }), 424, 'backend_not_ready')
		expect(down['reason']).toBe('backend_unavailable')
		expect((await s.call('POST', '/v1/select', { name: 'm' })).status).toBe(200) // no check, no network
	})

	test('select with check_backend against a backend that wants credentials is a 424', async () => {
		await using s = refApi()
		s.ref.behaviour.mode = 'auth'
		const d = expectError(await s.call('POST', '/v1/select', { name: 'm', check_backend: true }), 424, 'backend_not_ready')
		expect({ reason: d['reason'], message: d['message'] }).toEqual({ reason: 'backend_unavailable', message: expect.stringContaining('HTTP 401') })
	})

	test('list with ?check=1 asks each endpoint once, concurrently, bounded by the check timeout', async () => {
		using dir = tempDir()
		using hung = silentServer() // accepts connections, never answers
		await using ref = referenceBackend()
		const registryPath = writeRegistry(join(dir.path, 'r.json'), [
			entry('up', { baseUrl: ref.endpoint, servedModelId: 'ref-model' }),
			entry('missing', { baseUrl: ref.endpoint, servedModelId: 'nope' }),
			...Array.from({ length: 5 }, (_, i) => entry(`hung-${i}`, { baseUrl: hung.endpoint }))
		])
		using deps = backedDeps(registryPath, { checkTimeout: 1 })
		const call = client(deps)
		const started = performance.now()
		const rows = (await call('GET', '/v1/models?check=1')).body as { name: string; backend_ok: boolean }[]
		const elapsed = performance.now() - started
		expect(Object.fromEntries(rows.map((r) => [r.name, r.backend_ok]))).toEqual({
			'hung-0': false,
			'hung-1': false,
			'hung-2': false,
			'hung-3': false,
			'hung-4': false,
			missing: false,
			up: true
		})
		expect(elapsed).toBeLessThan(2500) // one shared check per endpoint, bounded by the timeout: not 5 x 1 s
		const plain = (await call('GET', '/v1/models')).body
		expect(Object.keys(plain[0])).not.toContain('backend_ok')
		expect((await call('GET', '/v1/models?check=0')).body).toEqual(plain)
	})
})

describe('GET /metrics', () => {
	test('is Prometheus text with per-model speed, probe outcomes and operation counts by outcome', async () => {
		await using s = refApi()
		await s.call('POST', '/v1/models/m/metrics', { ttft_ms: 100, tokens_generated: 11, duration_ms: 1100 })
		await s.call('POST', '/v1/select', { name: 'm' })
		await s.call('POST', '/v1/select', { name: 'ghost' })
		await s.call('POST', '/v1/probe/vision', { name: 'm' })
		s.ref.behaviour.mode = 'error500'
		await s.call('POST', '/v1/probe/vision', { name: 'm' })
		const r = await s.call('GET', '/metrics')
		expect({ status: r.status, type: r.headers.get('content-type') }).toEqual({ status: 200, type: 'text/plain; version=0.0.4; charset=utf-8' })
		const families = parseProm(r.text)
		const samples = (name: string) => families.get(name)?.samples
		expect({
			operations: samples('imageworks_operations_total'),
			violations: samples('imageworks_lock_violations_total'),
			rolling: samples('imageworks_model_rolling_samples'),
			avg: samples('imageworks_model_ttft_ms_avg'),
			p50: samples('imageworks_model_ttft_ms_p50'),
			p95: samples('imageworks_model_ttft_ms_p95'),
			rate: samples('imageworks_model_throughput_tokens_per_second'),
			probes: samples('imageworks_probe_outcomes')?.sort((a, b) => (a.labels['outcome'] as string).localeCompare(b.labels['outcome'] as string))
		}).toEqual({
			operations: [
				{ name: 'imageworks_operations_total', labels: { operation: 'select', outcome: 'ok' }, value: 1 },
				{ name: 'imageworks_operations_total', labels: { operation: 'select', outcome: 'model_not_found' }, value: 1 },
				{ name: 'imageworks_operations_total', labels: { operation: 'probe_vision', outcome: 'ok' }, value: 2 }
			],
			violations: [{ name: 'imageworks_lock_violations_total', labels: {}, value: 0 }],
			rolling: [
				{ name: 'imageworks_model_rolling_samples', labels: { model: 'm' }, value: 1 },
				{ name: 'imageworks_model_rolling_samples', labels: { model: 'other' }, value: 0 }
			],
			avg: [{ name: 'imageworks_model_ttft_ms_avg', labels: { model: 'm' }, value: 100 }],
			p50: [{ name: 'imageworks_model_ttft_ms_p50', labels: { model: 'm' }, value: 100 }],
			p95: [{ name: 'imageworks_model_ttft_ms_p95', labels: { model: 'm' }, value: 100 }],
			rate: [{ name: 'imageworks_model_throughput_tokens_per_second', labels: { model: 'm' }, value: 10 }],
			probes: [
				{ name: 'imageworks_probe_outcomes', labels: { model: 'm', outcome: 'unknown' }, value: 1 },
				{ name: 'imageworks_probe_outcomes', labels: { model: 'm', outcome: 'verified' }, value: 1 }
			]
		})
		// operations, gateway requests, TTFT and throughput histograms, lock violations, then the gauges
		expect([...families.values()].map((f) => f.type)).toEqual(['counter', 'counter', 'histogram', 'histogram', 'counter', 'gauge', 'gauge', 'gauge', 'gauge', 'gauge', 'gauge'])
	})

	test('a scrape while the registry is broken still answers', async () => {
		await using s = refApi()
		await s.call('POST', '/v1/models/m/metrics', { ttft_ms: 100, tokens_generated: 11, duration_ms: 1100 })
		writeFileSync(s.registryPath, '[{')
		const r = await s.call('GET', '/metrics')
		expect(r.status).toBe(200)
		expect(parseProm(r.text).get('imageworks_model_rolling_samples')?.type).toBe('gauge')
	})
})

describe('the served API', () => {
	test('samples survive a server restart', async () => {
		using dir = tempDir()
		const registryPath = writeRegistry(join(dir.path, 'r.json'), [entry('m')])
		{
			await using server = await startServer(registryPath)
			const r = await fetchJson(`${server.url}/v1/models/m/metrics`, {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: JSON.stringify({ ttft_ms: 50, tokens_generated: 3, duration_ms: 150 })
			})
			expect(r.status).toBe(200)
		}
		await using server = await startServer(registryPath)
		const body = (await fetchJson(`${server.url}/v1/models/m/metrics`)).body
		expect({ rolling: body.rolling_samples, avg: body.ttft_ms_avg }).toEqual({ rolling: 1, avg: 50 })
		const prom = parseProm(await (await fetch(`${server.url}/metrics`)).text())
		expect(prom.get('imageworks_model_ttft_ms_avg')?.samples).toEqual([{ name: 'imageworks_model_ttft_ms_avg', labels: { model: 'm' }, value: 50 }])
	})
})
