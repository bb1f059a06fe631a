/**
 * Status codes and bodies of the API, in-process through `app.handle` (fast tables); server.test.ts
 * drives the real binary over loopback.
 */
import { describe, expect, test } from 'bun:test'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { createApp } from '../../src/http/app.ts'
import { client } from '../helpers/app.ts'
import { expectError } from '../helpers/http.ts'
import { world } from '../helpers/registry.ts'

const NO_CAPS = { text: true, vision: false, audio: false, embedding: false, tools: false, thinking: false }
const JSON_TYPE = expect.stringContaining('application/json')

describe('GET /v1/models', () => {
	test('lists every model sorted by name with canonical capabilities', async () => {
		using w = world()
		const call = client(w.deps)
		const r = await call('GET', '/v1/models')
		expect({ status: r.status, type: r.headers.get('content-type') }).toEqual({ status: 200, type: JSON_TYPE })
		expect(r.body.map((m: { name: string }) => m.name)).toEqual(['old', 'tiny', 'vision-a', 'vision-b'])
		expect(r.body[0]).toEqual({
			name: 'old',
			backend: 'vllm',
			capabilities: NO_CAPS,
			locked: false,
			vision_ok: null,
			display_name: null,
			deprecated: true,
			roles: ['caption', 'keywords']
		})
		// vision-b says "image" in the file: the answer uses the canonical name.
		expect(r.body[3].capabilities).toEqual({ ...NO_CAPS, vision: true })
	})

	test('filters by role', async () => {
		using w = world()
		const r = await client(w.deps)('GET', '/v1/models?role=caption')
		expect(r.status).toBe(200)
		expect(r.body.map((m: { name: string }) => m.name)).toEqual(['old', 'vision-a', 'vision-b'])
	})
})

describe('POST /v1/select', () => {
	test('selects by name with a capability synonym', async () => {
		using w = world()
		const r = await client(w.deps)('POST', '/v1/select', { name: 'vision-b', require_capabilities: ['image'] })
		expect({ status: r.status, type: r.headers.get('content-type'), body: r.body }).toEqual({
			status: 200,
			type: JSON_TYPE,
			body: {
				name: 'vision-b',
				endpoint: 'http://gpu-box:11434/v1',
				backend: 'ollama',
				internal_model_id: 'vision-b:7b',
				capabilities: { ...NO_CAPS, vision: true },
				locked: false,
				deprecated: false,
				display_name: null
			}
		})
	})

	test('selects by role: lowest priority among non-deprecated capable models, ties by name', async () => {
		using w = world()
		const r = await client(w.deps)('POST', '/v1/select', { role: 'caption', require_capabilities: ['vision'] })
		expect(r.status).toBe(200)
		expect(r.body).toMatchObject({ name: 'vision-a', endpoint: 'http://localhost:8000/v1', internal_model_id: 'org/vision-a' })
	})

	// [body, status, error code]: the Python suite's table, with this API's codes.
	const errors: [string, unknown, number, string][] = [
		['an unknown name', { name: 'nope' }, 404, 'model_not_found'],
		['missing capabilities', { name: 'tiny', require_capabilities: ['vision', 'audio'] }, 409, 'missing_capabilities'],
		['an unknown capability', { name: 'tiny', require_capabilities: ['telepathy'] }, 422, 'unknown_capability'],
		['a role nobody serves', { role: 'nobody' }, 404, 'no_model_for_role'],
		['an empty name', { name: '' }, 422, 'invalid_name'],
		['a path as name', { name: '../../etc/passwd' }, 422, 'invalid_name'],
		['a NUL in the name', { name: 'a\u0000b' }, 422, 'invalid_name'],
		['a number as name', { name: 5 }, 422, 'invalid_request'],
		['a list as name', { name: ['tiny'] }, 422, 'invalid_request'],
		['neither name nor role', {}, 422, 'invalid_request'],
		['both name and role', { name: 'tiny', role: 'caption' }, 422, 'invalid_request'],
		['an unknown field', { name: 'tiny', surprise: 1 }, 422, 'invalid_request'],
		['a 10,000-character name', { name: 'x'.repeat(10_000) }, 422, 'invalid_name'],
		['an array body', [], 422, 'invalid_request']
	]
	test.each(errors)('refuses %s with a clear JSON error', async (_what, body, status, code) => {
		using w = world()
		expectError(await client(w.deps)('POST', '/v1/select', body), status, code)
	})

	test('names every missing capability, in canonical order', async () => {
		using w = world()
		const d = expectError(
			await client(w.deps)('POST', '/v1/select', { name: 'tiny', require_capabilities: ['AUDIO', 'image'] }),
			409,
			'missing_capabilities'
		)
		expect(d).toEqual({ error: 'missing_capabilities', message: expect.stringContaining('vision, audio'), name: 'tiny', missing: ['vision', 'audio'] })
	})

	test('an unknown model suggests close names', async () => {
		using w = world()
		const d = expectError(await client(w.deps)('POST', '/v1/select', { name: 'tiyn' }), 404, 'model_not_found')
		expect(d).toEqual({ error: 'model_not_found', message: expect.stringContaining('Did you mean "tiny"?'), name: 'tiyn', suggestions: ['tiny'] })
	})

	// The Python API answered 422; this one says 400 malformed_body, as OpenAI-compatible servers do.
	test('an empty body is a missing body: 422 naming what is required', async () => {
		using w = world()
		expectError(await client(w.deps)('POST', '/v1/select', ''), 422, 'invalid_request')
	})

	test.each([['{'], ['not json'], ['{"name": "tiny",}']])('a malformed body %p is a 400, never a 500', async (raw) => {
		using w = world()
		const d = expectError(await client(w.deps)('POST', '/v1/select', raw), 400, 'malformed_body')
		expect(d['message']).toContain('not valid JSON')
	})

	test.each([
		['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\ntiny\r\n--x--\r\n'],
		['application/x-www-form-urlencoded', 'name=tiny'],
		['text/plain', 'name tiny']
	])('a body sent as %s that is not JSON is a 415 that says to send JSON', async (type, body) => {
		using w = world()
		const d = expectError(await client(w.deps)('POST', '/v1/select', body, { 'content-type': type }), 415, 'unsupported_media_type')
		expect(d['message']).toContain('application/json')
	})

	test('JSON that curl -d labels as a form is taken as JSON', async () => {
		using w = world()
		const r = await client(w.deps)('POST', '/v1/select', '{"name": "tiny"}', { 'content-type': 'application/x-www-form-urlencoded' })
		expect({ status: r.status, name: r.body?.name }).toEqual({ status: 200, name: 'tiny' })
	})

	test('application/json with a charset, and +json types, are JSON', async () => {
		using w = world()
		const call = client(w.deps)
		for (const type of ['application/json; charset=utf-8', 'application/vnd.api+json']) {
			const r = await call('POST', '/v1/select', '{"name": "tiny"}', { 'content-type': type })
			expect({ type, status: r.status, name: r.body?.name }).toEqual({ type, status: 200, name: 'tiny' })
		}
	})

	test('a body that is not UTF-8 is a 400, never a 500', async () => {
		using w = world()
		const res = await createApp(w.deps).handle(
			new Request('http://localhost/v1/select', {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: new Uint8Array([0xff, 0xfe])
			})
		)
		expect({ status: res.status, body: await res.json() }).toEqual({
			status: 400,
			body: { detail: { error: 'malformed_body', message: expect.stringContaining('not valid JSON') } }
		})
	})
})

describe('POST /v1/verify', () => {
	test('verifies, and a locked model whose files drift is refused by select and verify', async () => {
		using w = world()
		const call = client(w.deps)
		const r = await call('POST', '/v1/verify', { name: 'tiny' })
		expect({ status: r.status, type: r.headers.get('content-type'), body: r.body }).toEqual({
			status: 200,
			type: JSON_TYPE,
			body: {
				status: 'ok',
				name: 'tiny',
				aggregate_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
				files: 4,
				bytes: 423_495,
				seconds: expect.any(Number),
				locked: false,
				changes: null
			}
		})
		const aggregate = r.body.aggregate_sha256 as string
		expect((await call('POST', '/v1/models/tiny/lock')).body).toEqual({ name: 'tiny', locked: true, expected_aggregate_sha256: null, changed: true })
		writeFileSync(`${w.modelDir}/config.json`, 'drift')

		const refused = expectError(await call('POST', '/v1/select', { name: 'tiny' }), 409, 'lock_violation')
		expect(refused).toMatchObject({ changed: ['config.json'], added: [], removed: [], message: expect.stringContaining('verify tiny') })

		const d = expectError(await call('POST', '/v1/verify', { name: 'tiny' }), 409, 'lock_violation')
		const actual = d['actual_aggregate_sha256']
		expect(actual).toMatch(/^[0-9a-f]{64}$/)
		expect(actual).not.toBe(aggregate)
		expect(d).toEqual({
			error: 'lock_violation',
			message: expect.stringContaining('changed: config.json'),
			name: 'tiny',
			changed: ['config.json'],
			added: [],
			removed: [],
			expected_aggregate_sha256: aggregate,
			actual_aggregate_sha256: actual
		})
	})

	test('refuses unknown models, models without files and bad names', async () => {
		using w = world()
		const call = client(w.deps)
		expectError(await call('POST', '/v1/verify', { name: 'nope' }), 404, 'model_not_found')
		const missing = expectError(await call('POST', '/v1/verify', { name: 'vision-a' }), 422, 'artifacts_missing')
		expect(missing['message']).toContain('model_path')
		expectError(await call('POST', '/v1/verify', { name: '../x' }), 422, 'invalid_name')
	})
})

describe('routing', () => {
	test('an unknown endpoint is a JSON 404 and a wrong method a JSON 405 with Allow', async () => {
		using w = world()
		const call = client(w.deps)
		expectError(await call('GET', '/v1/nothing'), 404, 'not_found')
		const r = await call('GET', '/v1/select')
		expect(expectError(r, 405, 'method_not_allowed')['message']).toContain('use POST')
		expect(r.headers.get('allow')).toBe('POST')
	})
})

describe('the registry on disk', () => {
	test('/healthz counts the models, and hand edits are seen without a restart', async () => {
		using w = world()
		const call = client(w.deps)
		const h = await call('GET', '/healthz')
		expect({ status: h.status, type: h.headers.get('content-type'), body: h.body }).toEqual({
			status: 200,
			type: JSON_TYPE,
			body: { status: 'ok', models: 4 }
		})
		const raw = JSON.parse(readFileSync(w.registryPath, 'utf8')) as unknown[]
		writeFileSync(w.registryPath, JSON.stringify(raw.slice(0, 2)))
		expect((await call('GET', '/v1/models')).body.map((m: { name: string }) => m.name)).toEqual(['tiny', 'vision-a'])
		expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok', models: 2 })
	})

	test('a corrupt registry keeps reads on the last good copy, refuses writes, and recovers', async () => {
		using w = world()
		const call = client(w.deps)
		expect((await call('GET', '/v1/models')).status).toBe(200)
		const good = readFileSync(w.registryPath, 'utf8')
		writeFileSync(w.registryPath, '[{oops')

		const h = await call('GET', '/healthz')
		expect({ status: h.status, body: h.body }).toEqual({
			status: 503,
			body: { status: 'degraded', models: 4, reason: expect.stringContaining('malformed JSON at line 1, column 3') }
		})
		expect((await call('GET', '/v1/models')).body).toHaveLength(4)
		expect((await call('POST', '/v1/select', { name: 'vision-a' })).status).toBe(200)
		const d = expectError(await call('POST', '/v1/verify', { name: 'tiny' }), 503, 'registry_invalid')
		expect(d['problems']).toEqual([expect.stringContaining('malformed JSON at line 1, column 3')])
		expect(readFileSync(w.registryPath, 'utf8')).toBe('[{oops')

		writeFileSync(w.registryPath, good)
		expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok', models: 4 })
	})

	test('error bodies and /healthz never show server paths', async () => {
		using w = world()
		const call = client(w.deps)
		writeFileSync(w.registryPath, '[{oops')
		for (const r of [await call('POST', '/v1/verify', { name: 'tiny' }), await call('GET', '/healthz')]) {
			expect(r.status).toBe(503)
			expect(r.text).toContain('model_registry.json')
			expect(r.text).not.toContain(dirname(w.registryPath))
			expect(r.text).not.toContain(w.root)
		}
	})
})
