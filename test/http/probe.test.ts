/** POST /v1/probe/vision against the reference backend: outcomes, statuses, and that nothing is written wrongly. */
import { describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { client } from '../helpers/app.ts'
import { startServer } from '../helpers/binary.ts'
import { backedDeps, backendRegistry } from '../helpers/backed.ts'
import { expectError, fetchJson } from '../helpers/http.ts'
import { bombPng, reencode, solidPng } from '../helpers/images.ts'
import { referenceBackend, type Behaviour } from '../helpers/reference-backend.ts'
import { readJson, tempDir } from '../helpers/registry.ts'

const GREEN = [0, 200, 0] as const

/**
 * The Python suite's fixture: image roots with a green PNG, a text file named .png and a symlink out of
 * the roots; a registry whose model "seeing" is served by a reference backend; the API in-process with
 * a 1 s probe timeout.
 */
function setup(behaviour: Partial<Behaviour> = {}, probeTimeout = 1) {
	const dir = tempDir()
	const roots = join(dir.path, 'images')
	mkdirSync(roots)
	writeFileSync(join(roots, 'green.png'), solidPng(64, 64, GREEN))
	writeFileSync(join(roots, 'fake.png'), 'just text')
	writeFileSync(join(dir.path, 'outside.png'), solidPng(64, 64, GREEN))
	symlinkSync(join(dir.path, 'outside.png'), join(roots, 'escape.png'))
	const ref = referenceBackend(behaviour)
	const registryPath = backendRegistry(join(dir.path, 'r.json'), ref.endpoint, { seeing: 'ref-model' })
	const deps = backedDeps(registryPath, { imageRoots: [roots], probeTimeout })
	return {
		call: client(deps),
		deps,
		ref,
		registryPath,
		/** The registry's bytes, to check nothing was written. */
		bytes: () => readFileSync(registryPath, 'utf8'),
		vision: () => (readJson<Record<string, any>[]>(registryPath)[0] as Record<string, any>)['probes']?.['vision'],
		history: () => deps.state.probeHistory('seeing').map((p) => p.outcome),
		async [Symbol.asyncDispose]() {
			await ref.stop()
			deps[Symbol.dispose]()
			dir[Symbol.dispose]()
		}
	}
}

describe('POST /v1/probe/vision', () => {
	test('a model that sees is verified end to end, and it is recorded', async () => {
		await using s = setup()
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing' })
		expect({ status: r.status, outcome: r.body.outcome, vision_ok: r.body.vision_ok, rounds: r.body.rounds.length }).toEqual({
			status: 200,
			outcome: 'verified',
			vision_ok: true,
			rounds: 2
		})
		expect(s.vision()).toEqual({
			vision_ok: true,
			timestamp: r.body.timestamp,
			probe_version: 'colour-challenge-v1',
			latency_ms: r.body.latency_ms,
			notes: r.body.notes
		})
		expect(r.body.notes).toMatch(/^round 1: \w+ in \w+, answered "\w+\." \(pass\); round 2: \w+ in \w+, answered "\w+\." \(pass\)$/)
		expect((await s.call('GET', '/v1/models')).body[0].vision_ok).toBe(true)
		expect(s.history()).toEqual(['verified'])
	})

	test("the caller's image, by path or as base64, is described", async () => {
		await using s = setup()
		const byPath = await s.call('POST', '/v1/probe/vision', { name: 'seeing', image_path: 'green.png' })
		expect({ status: byPath.status, description: byPath.body.description, image: byPath.body.image }).toEqual({
			status: 200,
			description: 'A picture dominated by green.',
			image: { mime: 'image/png', width: 64, height: 64, resized: false, source: 'image_path' }
		})
		const jpeg = Buffer.from(await reencode(solidPng(64, 64, GREEN), 'jpeg')).toString('base64')
		const byB64 = await s.call('POST', '/v1/probe/vision', { name: 'seeing', image_b64: jpeg })
		expect({ status: byB64.status, description: byB64.body.description, mime: byB64.body.image.mime }).toEqual({
			status: 200,
			description: 'A picture dominated by green.',
			mime: 'image/jpeg'
		})
		const sent = s.ref.requests.at(-1)?.['messages'][0].content
		expect(sent[0].text).toBe('Describe this image succinctly.')
		expect(sent[1].image_url.url).toStartWith('data:image/jpeg;base64,')
		// The challenge ran first each time: two rounds, then the description.
		expect(s.ref.requests).toHaveLength(6)
	})

	test('a data URI is sent with the type of its bytes, whatever it claims', async () => {
		await using s = setup()
		const png = Buffer.from(solidPng(32, 32, GREEN)).toString('base64')
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing', image_b64: `data:image/jpeg;base64,${png}` })
		expect({ status: r.status, mime: r.body.image.mime, description: r.body.description }).toEqual({
			status: 200,
			mime: 'image/png',
			description: 'A picture dominated by green.'
		})
		expect(s.ref.requests.at(-1)?.['messages'][0].content[1].image_url.url).toBe(`data:image/png;base64,${png}`)
	})

	test('a constant answer is not_supported and recorded as vision_ok false', async () => {
		await using s = setup({ mode: 'constant' })
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing' })
		expect({ status: r.status, outcome: r.body.outcome }).toEqual({ status: 200, outcome: 'not_supported' })
		expect(s.vision().vision_ok).toBe(false)
	})

	test('an image refusal is not_supported and recorded as vision_ok false', async () => {
		await using s = setup({ mode: 'refuse' })
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing' })
		expect({ status: r.status, outcome: r.body.outcome, vision_ok: s.vision().vision_ok }).toEqual({ status: 200, outcome: 'not_supported', vision_ok: false })
		expect(r.body.error).toContain('does not support image input')
	})

	// [what, body, status, error code]
	const bad: [string, unknown, number, string][] = [
		['an unknown model', { name: 'nobody' }, 404, 'model_not_found'],
		['a text file named .png', { name: 'seeing', image_path: 'fake.png' }, 400, 'not_an_image'],
		['a path out of the roots', { name: 'seeing', image_path: '../outside.png' }, 403, 'image_path_not_allowed'],
		['a symlink out of the roots', { name: 'seeing', image_path: 'escape.png' }, 403, 'image_path_not_allowed'],
		['an absolute path elsewhere', { name: 'seeing', image_path: '/etc/passwd' }, 403, 'image_path_not_allowed'],
		['a missing file', { name: 'seeing', image_path: 'missing.png' }, 400, 'not_an_image'],
		['a folder', { name: 'seeing', image_path: '.' }, 400, 'not_an_image'],
		['text that is not base64', { name: 'seeing', image_b64: '%%%not-base64%%%' }, 400, 'not_an_image'],
		['base64 of plain text', { name: 'seeing', image_b64: Buffer.from('plain text').toString('base64') }, 400, 'not_an_image'],
		['both a path and base64', { name: 'seeing', image_path: 'green.png', image_b64: 'AAAA' }, 422, 'invalid_request'],
		['no name', {}, 422, 'invalid_request'],
		['an unknown field', { name: 'seeing', colour: 'red' }, 422, 'invalid_request'],
		['an empty image_path', { name: 'seeing', image_path: '' }, 422, 'invalid_request'],
		['a path as name', { name: '../../x' }, 422, 'invalid_name'],
		['a body that is not JSON', '{"name": "seeing"', 400, 'malformed_body']
	]
	test.each(bad)('%s gets its status and writes nothing', async (_what, body, status, code) => {
		await using s = setup()
		const before = s.bytes()
		expectError(await s.call('POST', '/v1/probe/vision', body), status, code)
		expect({ registry: s.bytes() === before, backendCalls: s.ref.requests.length, history: s.history() }).toEqual({
			registry: true,
			backendCalls: 0,
			history: []
		})
	})

	test('a decompression bomb is a 413 before the backend is asked', async () => {
		await using s = setup()
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing', image_b64: Buffer.from(bombPng()).toString('base64') })
		expect(expectError(r, 413, 'image_too_large')['message']).toContain('20000x20000 pixels')
		expect(s.ref.requests).toEqual([])
	})

	test('a body over the limit is a 413', async () => {
		await using s = setup()
		const body = `{"name": "seeing", "image_b64": "${'A'.repeat(33 << 20)}"}`
		expectError(await s.call('POST', '/v1/probe/vision', body), 413, 'body_too_large')
		expect(s.ref.requests).toEqual([])
	})

	test('an empty body is a 422', async () => {
		await using s = setup()
		expectError(await s.call('POST', '/v1/probe/vision', ''), 422, 'invalid_request')
		expect(s.ref.requests).toEqual([])
	})

	test('a dead backend is a 502 with outcome unknown, and never flips vision_ok', async () => {
		await using s = setup()
		expect((await s.call('POST', '/v1/probe/vision', { name: 'seeing' })).body.vision_ok).toBe(true)
		const before = s.bytes()
		await s.ref.stop()
		const started = performance.now()
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing' })
		const d = expectError(r, 502, 'backend_unavailable')
		expect({ outcome: d['outcome'], vision_ok: d['result'].vision_ok, rounds: d['result'].rounds }).toEqual({ outcome: 'unknown', vision_ok: null, rounds: [] })
		expect(d['message']).toContain(s.ref.endpoint)
		expect(performance.now() - started).toBeLessThan(1000) // refused at once, not after the timeout
		expect(s.bytes()).toBe(before)
		expect(s.history()).toEqual(['unknown', 'verified'])
	})

	test('a hung backend is a 504 within the timeout, and nothing is recorded in the registry', async () => {
		await using s = setup({ mode: 'hang', hangMs: 5000 }, 0.5)
		const before = s.bytes()
		const started = performance.now()
		const r = await s.call('POST', '/v1/probe/vision', { name: 'seeing' })
		expect(performance.now() - started).toBeLessThan(3000)
		const d = expectError(r, 504, 'backend_timeout')
		expect({ outcome: d['outcome'], message: d['message'] }).toEqual({ outcome: 'unknown', message: expect.stringContaining('did not answer within 0.5s') })
		expect(s.bytes()).toBe(before)
		expect(s.history()).toEqual(['unknown'])
	})

	test.each(['error500', 'auth', 'garbage'] as const)('a backend answering %s is a 502 with outcome unknown', async (mode) => {
		await using s = setup({ mode })
		const before = s.bytes()
		const d = expectError(await s.call('POST', '/v1/probe/vision', { name: 'seeing' }), 502, 'backend_unavailable')
		expect(d['outcome']).toBe('unknown')
		expect(s.bytes()).toBe(before)
	})
})

describe('the served API', () => {
	const post = (url: string, body: unknown) =>
		fetchJson(`${url}/v1/probe/vision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

	test('image roots default to the working directory, and IMAGEWORKS_IMAGE_ROOTS replaces it', async () => {
		await using s = setup()
		const dir = join(s.registryPath, '..')
		{
			await using server = await startServer(s.registryPath, { cwd: dir })
			const r = await post(server.url, { name: 'seeing', image_path: 'images/green.png' })
			expect({ status: r.status, description: r.body.description }).toEqual({ status: 200, description: 'A picture dominated by green.' })
			expect((await post(server.url, { name: 'seeing', image_path: 'outside.png' })).status).toBe(200)
		}
		await using server = await startServer(s.registryPath, { cwd: dir, env: { IMAGEWORKS_IMAGE_ROOTS: join(dir, 'images') } })
		expect((await post(server.url, { name: 'seeing', image_path: 'green.png' })).status).toBe(200)
		const outside = expectError(await post(server.url, { name: 'seeing', image_path: '../outside.png' }), 403, 'image_path_not_allowed')
		expect(outside['message']).not.toContain(dir)
		expectError(await post(server.url, { name: 'seeing', image_path: 'escape.png' }), 403, 'image_path_not_allowed')
	})

	test('IMAGEWORKS_PROBE_TIMEOUT bounds a hung backend: 504 with outcome unknown', async () => {
		await using s = setup({ mode: 'hang', hangMs: 10_000 })
		await using server = await startServer(s.registryPath, { env: { IMAGEWORKS_PROBE_TIMEOUT: '0.5' } })
		const started = performance.now()
		const d = expectError(await post(server.url, { name: 'seeing' }), 504, 'backend_timeout')
		expect(performance.now() - started).toBeLessThan(3000)
		expect({ outcome: d['outcome'], message: d['message'] }).toEqual({ outcome: 'unknown', message: expect.stringContaining('within 0.5s') })
		expect(s.vision()).toBeUndefined()
	})
})
