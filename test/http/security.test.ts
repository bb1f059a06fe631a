/** Auth, exposure and hostile input: tokens, binding, size limits, deep JSON, names, leaks. */
import { describe, expect, spyOn, test } from 'bun:test'
import * as crypto from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createApp } from '../../src/http/app.ts'
import { client } from '../helpers/app.ts'
import { runBinary, startServer } from '../helpers/binary.ts'
import { expectError, fetchJson, postChunked } from '../helpers/http.ts'
import { depsFor, readJson, world } from '../helpers/registry.ts'

const TOKEN = 's3cret-token-value-42'
const MiB = 1 << 20
const LIMIT = 32 * MiB

/** The standard world, served in-process with IMAGEWORKS_API_TOKEN set. */
function secured() {
	const w = world()
	const deps = depsFor(w.registryPath, { IMAGEWORKS_API_TOKEN: TOKEN })
	return {
		...w,
		call: client(deps),
		[Symbol.dispose]: () => {
			deps.state.close()
			w[Symbol.dispose]()
		}
	}
}

describe('bearer token', () => {
	const PROTECTED: [string, string][] = [
		['GET', '/v1/models'],
		['POST', '/v1/select'],
		['POST', '/v1/verify'],
		['POST', '/v1/models/tiny/lock'],
		['POST', '/v1/models/tiny/unlock'],
		['POST', '/v1/probe/vision'],
		['GET', '/v1/models/tiny/metrics'],
		['POST', '/v1/models/tiny/metrics'],
		['POST', '/v1/models/tiny/bench'],
		['GET', '/metrics'],
		['GET', '/swagger'],
		['GET', '/swagger/json'],
		['GET', '/swagger/assets/swagger-ui-bundle.js'],
		['GET', '/nothing-here']
	]
	const WRONG: [string, Record<string, string>][] = [
		['no header', {}],
		['a wrong token', { authorization: 'Bearer wrong' }],
		['the token as Basic', { authorization: `Basic ${TOKEN}` }],
		['the token plus a character', { authorization: `Bearer ${TOKEN}x` }],
		['Bearer alone', { authorization: 'Bearer' }]
	]
	const cases = PROTECTED.flatMap(([method, path]) => WRONG.map(([what, headers]) => [method, path, what, headers] as const))

	test.each(cases)('%s %s with %s is a 401 asking for a bearer token', async (method, path, _what, headers) => {
		using s = secured()
		const r = await s.call(method, path, method === 'POST' ? { name: 'tiny' } : undefined, headers)
		expect(expectError(r, 401, 'unauthorized')['message']).toContain('Authorization: Bearer')
		expect(r.headers.get('www-authenticate')).toBe('Bearer')
	})

	test('a refused request changes nothing', async () => {
		using s = secured()
		const before = readFileSync(s.registryPath, 'utf8')
		expectError(await s.call('POST', '/v1/models/tiny/lock', { set_expected: true }), 401, 'unauthorized')
		expectError(await s.call('POST', '/v1/verify', { name: 'tiny' }, { authorization: 'Bearer nope' }), 401, 'unauthorized')
		expectError(await s.call('POST', '/v1/models/tiny/metrics', { ttft_ms: 1, tokens_generated: 2, duration_ms: 3 }), 401, 'unauthorized')
		expect(readFileSync(s.registryPath, 'utf8')).toBe(before)
		const ok = { authorization: `Bearer ${TOKEN}` }
		expect((await s.call('GET', '/v1/models/tiny/metrics', undefined, ok)).body.rolling_samples).toBe(0)
	})

	test('the right token passes, and /healthz needs none', async () => {
		using s = secured()
		const ok = { authorization: `Bearer ${TOKEN}` }
		const health = await s.call('GET', '/healthz')
		expect({ status: health.status, body: health.body }).toEqual({ status: 200, body: { status: 'ok', models: 4 } })
		expect((await s.call('GET', '/v1/models', undefined, ok)).status).toBe(200)
		const selected = await s.call('POST', '/v1/select', { name: 'tiny' }, ok)
		expect({ status: selected.status, name: selected.body.name }).toEqual({ status: 200, name: 'tiny' })
		expect((await s.call('GET', '/swagger/json', undefined, ok)).status).toBe(200)
		const prom = await s.call('GET', '/metrics', undefined, ok)
		expect({ status: prom.status, type: prom.headers.get('content-type') }).toEqual({ status: 200, type: 'text/plain; version=0.0.4; charset=utf-8' })
		const metrics = await s.call('GET', '/v1/models/tiny/metrics', undefined, ok)
		expect({ status: metrics.status, name: metrics.body.name }).toEqual({ status: 200, name: 'tiny' })
		// The scheme is case-insensitive (RFC 7235).
		expect((await s.call('GET', '/v1/models', undefined, { authorization: `bearer ${TOKEN}` })).status).toBe(200)
	})

	test('tokens are compared in constant time: equal-length digests through timingSafeEqual', async () => {
		using s = secured()
		const spy = spyOn(crypto, 'timingSafeEqual')
		try {
			for (const guess of ['x', TOKEN.slice(0, -1), `${TOKEN.slice(0, -1)}X`, `${TOKEN}${TOKEN}`, 'y'.repeat(10_000)]) {
				expectError(await s.call('GET', '/v1/models', undefined, { authorization: `Bearer ${guess}` }), 401, 'unauthorized')
			}
			expect((await s.call('GET', '/v1/models', undefined, { authorization: `Bearer ${TOKEN}` })).status).toBe(200)
			// One comparison per request, whatever the guess's length: never a length check that returns early.
			expect(spy.mock.calls.map(([a, b]) => [(a as Uint8Array).byteLength, (b as Uint8Array).byteLength])).toEqual(
				Array.from({ length: 6 }, () => [32, 32])
			)
		} finally {
			spy.mockRestore()
		}
	})

	test('the served API never prints the token or a guessed one', async () => {
		using w = world()
		const server = await startServer(w.registryPath, { env: { IMAGEWORKS_API_TOKEN: TOKEN } })
		try {
			const wrong = await fetchJson(`${server.url}/v1/models`, { headers: { authorization: 'Bearer guess-wrong-123' } })
			expect(wrong.status).toBe(401)
			expect(wrong.text).not.toContain('guess-wrong-123')
			expect((await fetch(`${server.url}/v1/models`)).status).toBe(401)
			expect((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
		} finally {
			await server.stop()
		}
		expect(server.output()).toContain('imageworks-loader serving')
		expect(server.output()).toContain('rejected GET /v1/models from 127.0.0.1: missing or wrong bearer token')
		expect(server.output()).not.toContain(TOKEN)
		expect(server.output()).not.toContain('guess-wrong-123')
	})
})

describe('binding', () => {
	test('a public bind is refused without a token, for IPv4 and IPv6', async () => {
		using w = world()
		for (const host of ['0.0.0.0', '::']) {
			const r = await runBinary(['--registry', w.registryPath, 'serve', '--host', host, '--port', '0'])
			expect({ host, exitCode: r.exitCode, stdout: r.stdout }).toEqual({ host, exitCode: 2, stdout: '' })
			expect(r.stderr).toContain(`refusing to bind ${host} without IMAGEWORKS_API_TOKEN`)
			expect(r.stderr).toContain('--allow-unauthenticated')
		}
	})

	test('a public bind with a token serves, and every request needs the token', async () => {
		using w = world()
		await using server = await startServer(w.registryPath, { env: { IMAGEWORKS_API_TOKEN: TOKEN }, args: ['--host', '0.0.0.0'] })
		expect(server.output()).toContain(`on http://0.0.0.0:${server.port} `)
		expectError(await fetchJson(`${server.url}/v1/models`), 401, 'unauthorized')
		expect((await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
	})

	test('--allow-unauthenticated serves a public bind without a token', async () => {
		using w = world()
		await using server = await startServer(w.registryPath, { args: ['--host', '0.0.0.0', '--allow-unauthenticated'] })
		expect((await fetch(`${server.url}/v1/models`)).status).toBe(200)
	})

	test('the default bind is 127.0.0.1: other addresses of this machine do not reach it', async () => {
		using w = world()
		const help = await runBinary(['serve', '--help'])
		expect(help.stdout).toContain('--host <host>            Address to bind (default: 127.0.0.1)')
		await using server = await startServer(w.registryPath)
		expect(server.output()).toContain(`on http://127.0.0.1:${server.port} `)
		expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
		const external = Object.values(networkInterfaces())
			.flat()
			.find((a) => a && a.family === 'IPv4' && !a.internal)
		if (external) {
			const reached = await fetch(`http://${external.address}:${server.port}/healthz`).then(
				() => true,
				() => false
			)
			expect({ address: external.address, reached }).toEqual({ address: external.address, reached: false })
		}
	})
})

describe('hostile bodies', () => {
	test.each([
		['100,000 nested arrays', '['.repeat(100_000) + ']'.repeat(100_000)],
		['a name nested 50,000 deep', `{"name": ${'['.repeat(50_000)}${']'.repeat(50_000)}}`],
		['unbalanced nesting', '{'.repeat(100_000)]
	])('%s is a quick 422, never a 500', async (_what, body) => {
		using w = world()
		const started = performance.now()
		const d = expectError(await client(w.deps)('POST', '/v1/select', body), 422, 'invalid_request')
		expect(d['message']).toContain('deeper than 64 levels')
		expect(performance.now() - started).toBeLessThan(5000)
	})

	test('nesting inside strings does not count', async () => {
		using w = world()
		const name = `${'['.repeat(100)}\\"${'{'.repeat(100)}`
		const d = expectError(await client(w.deps)('POST', '/v1/select', `{"name": "${name}"}`), 422, 'invalid_name')
		expect(d['message']).toContain('is 201 characters long, the limit is 128')
	})

	test('a huge flat body within the size limit is refused without trouble', async () => {
		using w = world()
		const body = `{"name": "tiny", "require_capabilities": [${'"vision",'.repeat(3_000_000)}"text"]}`
		expect(body.length).toBeLessThan(LIMIT)
		const d = expectError(await client(w.deps)('POST', '/v1/select', body), 422, 'invalid_request')
		expect(d['problems']).toEqual([{ field: 'require_capabilities', problem: 'Expected array length to be less or equal to 32' }])
	})

	test('a declared oversize body is a 413 before it is read', async () => {
		using w = world()
		const res = await createApp(w.deps).handle(
			new Request('http://localhost/v1/select', {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: 'x'.repeat(LIMIT + 1)
			})
		)
		expect({ status: res.status, type: res.headers.get('content-type'), body: await res.json() }).toEqual({
			status: 413,
			type: 'application/json',
			body: { detail: { error: 'body_too_large', message: 'Request body is over the 32 MiB limit. Send a smaller body' } }
		})
	})

	test('a chunked oversize body is a 413 once it passes the limit, and is not read to the end', async () => {
		using w = world()
		let pulled = 0
		const body = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (pulled++ < 40) controller.enqueue(new Uint8Array(MiB).fill(0x78))
				else controller.close()
			}
		})
		const res = await createApp(w.deps).handle(
			new Request('http://localhost/v1/select', {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body,
				duplex: 'half'
			} as RequestInit)
		)
		expect({ status: res.status, type: res.headers.get('content-type'), body: await res.json() }).toEqual({
			status: 413,
			type: 'application/json',
			body: { detail: { error: 'body_too_large', message: expect.stringContaining('32 MiB') } }
		})
		expect(pulled).toBeLessThan(40)
	})

	test('the served API answers oversize bodies with a JSON 413, declared or chunked', async () => {
		using w = world()
		await using server = await startServer(w.registryPath)
		const declared = await fetchJson(`${server.url}/v1/select`, {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: 'x'.repeat(LIMIT + 1)
		})
		expectError(declared, 413, 'body_too_large')

		// Up to 256 MiB, but the answer comes (and sending stops) soon after the first 32.
		const chunk = new Uint8Array(MiB).fill(0x78)
		const chunked = await postChunked(server.port, '/v1/select', Array.from({ length: 256 }, () => chunk), {}, { pauseAfterBytes: 32 * MiB })
		expect({ status: chunked.status, type: chunked.headers['content-type'], body: JSON.parse(chunked.text) }).toEqual({
			status: 413,
			type: 'application/json',
			body: { detail: { error: 'body_too_large', message: expect.stringContaining('32 MiB') } }
		})
		expect(chunked.headers['content-length']).toBeDefined()
		expect(chunked.sentBytes).toBeGreaterThan(LIMIT)
		expect(chunked.sentBytes).toBeLessThan(128 * MiB)
		// The server is still fine afterwards.
		expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
	})
})

describe('hostile names', () => {
	const NAMES = ['a/b', '..', '../../etc/passwd', 'a\\b', 'x'.repeat(300), 'a\u0000b', 'tab\tname', '\u202ename', '.hidden', 'a/b/c']

	test.each(NAMES.map((n) => [JSON.stringify(n).slice(0, 40), n]))('%s is refused everywhere with a clear error', async (_shown, name) => {
		using w = world()
		const call = client(w.deps)
		const before = readFileSync(w.registryPath, 'utf8')
		const path = `/v1/models/${encodeURIComponent(name)}`
		const replies = [
			await call('POST', '/v1/select', { name }),
			await call('POST', '/v1/verify', { name }),
			await call('POST', `${path}/lock`, { set_expected: true }),
			await call('POST', `${path}/unlock`),
			await call('POST', '/v1/probe/vision', { name }),
			await call('GET', `${path}/metrics`),
			await call('POST', `${path}/metrics`, { ttft_ms: 1, tokens_generated: 2, duration_ms: 3 }),
			await call('POST', `${path}/bench`, { requests: 1 })
		]
		for (const r of replies) {
			expect([404, 422]).toContain(r.status)
			expect(['model_not_found', 'invalid_name', 'invalid_request', 'not_found']).toContain(expectError(r, r.status, r.body.detail.error)['error'])
		}
		expect(readFileSync(w.registryPath, 'utf8')).toBe(before)
	})
})

describe('leaks', () => {
	test('error bodies carry no server paths and no stack traces', async () => {
		using w = world()
		const call = client(w.deps)
		expectError(await call('POST', '/v1/verify', { name: 'vision-a' }), 422, 'artifacts_missing')

		const raw = readJson<{ backend_config: Record<string, string> }[]>(w.registryPath)
		;(raw[0] as { backend_config: Record<string, string> }).backend_config['model_path'] = join(w.root, 'gone', 'weights')
		writeFileSync(w.registryPath, JSON.stringify(raw))
		const gone = await call('POST', '/v1/verify', { name: 'tiny' })
		expect(expectError(gone, 422, 'artifacts_missing')['message']).toBe('Cannot check the files of "tiny": model_path <server path> does not exist')
		expect(gone.text).not.toContain(w.root)

		writeFileSync(w.registryPath, '[{')
		const invalid = await call('POST', '/v1/verify', { name: 'tiny' })
		expectError(invalid, 503, 'registry_invalid')
		expect(invalid.text).toContain('model_registry.json')
		expect(invalid.text).not.toContain(dirname(w.registryPath))
		for (const r of [gone, invalid]) expect(r.text).not.toMatch(/\bat .+:\d+:\d+|\.ts\b|node_modules/)
	})
})
