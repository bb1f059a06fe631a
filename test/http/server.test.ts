/** The real thing: `dist/imageworks-loader serve` in a subprocess, driven over loopback HTTP with fetch. */
import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createApp } from '../../src/http/app.ts'
import { runBinary, startServer } from '../helpers/binary.ts'
import { ROOT } from '../helpers/paths.ts'
import { expectError, fetchJson } from '../helpers/http.ts'
import { readJson, tempDir, world } from '../helpers/registry.ts'

const post = (body: unknown) => ({
	method: 'POST',
	headers: { 'content-type': 'application/json' },
	body: typeof body === 'string' ? body : JSON.stringify(body)
})

describe('serve', () => {
	test('lists, selects and verifies over HTTP, and verify writes the registry', async () => {
		using w = world()
		await using server = await startServer(w.registryPath, { cwd: dirname(w.registryPath) })
		const health = await fetchJson(`${server.url}/healthz`)
		expect({ status: health.status, type: health.headers.get('content-type'), body: health.body }).toEqual({
			status: 200,
			type: expect.stringContaining('application/json'),
			body: { status: 'ok', models: 4 }
		})
		const models = await fetchJson(`${server.url}/v1/models`)
		expect(models.body.map((m: { name: string }) => m.name)).toEqual(['old', 'tiny', 'vision-a', 'vision-b'])

		const verified = await fetchJson(`${server.url}/v1/verify`, post({ name: 'tiny' }))
		expect({ status: verified.status, body: verified.body }).toEqual({
			status: 200,
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
		const selected = await fetchJson(`${server.url}/v1/select`, post({ name: 'tiny-alias' }))
		expect({ status: selected.status, name: selected.body.name, endpoint: selected.body.endpoint }).toEqual({
			status: 200,
			name: 'tiny',
			endpoint: 'http://localhost:8080/v1'
		})
		expectError(await fetchJson(`${server.url}/v1/select`, post({ name: 'missing' })), 404, 'model_not_found')
		expectError(await fetchJson(`${server.url}/v1/select`, post('{')), 400, 'malformed_body')

		const stored = readJson<{ artifacts: { aggregate_sha256: string; files: { path: string }[] } }[]>(w.registryPath)[0]
		expect(stored?.artifacts.aggregate_sha256).toBe(verified.body.aggregate_sha256)
		expect(stored?.artifacts.files.map((f) => f.path)).toEqual([
			'config.json',
			'model-00001-of-00002.safetensors',
			'model-00002-of-00002.safetensors',
			'tokenizer/tokenizer.json'
		])
	})

	test('a running server sees CLI writes and hand edits without a restart', async () => {
		using w = world()
		await using server = await startServer(w.registryPath)
		const locked = async () =>
			(await fetchJson(`${server.url}/v1/models`)).body.find((m: { name: string }) => m.name === 'tiny').locked
		expect(await locked()).toBe(false)

		const cli = await runBinary(['--registry', w.registryPath, 'lock', 'tiny'])
		expect({ exitCode: cli.exitCode, stderr: cli.stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(await locked()).toBe(true)

		const raw = readJson<unknown[]>(w.registryPath)
		raw.push({ name: 'hand-added', backend: 'ollama' })
		writeFileSync(w.registryPath, JSON.stringify(raw, null, 2))
		const names = (await fetchJson(`${server.url}/v1/models`)).body.map((m: { name: string }) => m.name)
		expect(names).toEqual(['hand-added', 'old', 'tiny', 'vision-a', 'vision-b'])
	})

	test('refuses to start on a broken registry, naming line and column, without a stack trace', async () => {
		using dir = tempDir()
		const bad = join(dir.path, 'r.json')
		writeFileSync(bad, '[')
		const r = await runBinary(['--registry', bad, 'serve', '--port', '0'])
		expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(r.stderr).toContain('malformed JSON at line 1, column 2')
		expect(r.stderr).not.toMatch(/^\s+at /m)
		expect(r.stderr).not.toMatch(/\.ts:\d+/)
	})

	test('refuses a public bind without a token', async () => {
		using w = world()
		const r = await runBinary(['--registry', w.registryPath, 'serve', '--host', '0.0.0.0', '--port', '0'])
		expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 2, stdout: '' })
		expect(r.stderr).toContain('IMAGEWORKS_API_TOKEN')
		expect(r.stderr).toContain('--allow-unauthenticated')
	})

	test('SIGTERM stops the server cleanly (exit 0) and frees the port', async () => {
		using w = world()
		const server = await startServer(w.registryPath)
		try {
			expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
		} finally {
			expect(await server.stop()).toBe(0)
		}
		expect(server.proc.exitCode).toBe(0)
		expect(await fetch(`${server.url}/healthz`).then(
			() => 'answered',
			() => 'refused'
		)).toBe('refused')
	})
})

describe('API docs', () => {
	test('/swagger loads its script and styles from the server itself, no CDN', async () => {
		using w = world()
		await using server = await startServer(w.registryPath)
		const page = await fetch(`${server.url}/swagger`)
		expect({ status: page.status, type: page.headers.get('content-type') }).toEqual({ status: 200, type: 'text/html; charset=utf-8' })
		const html = await page.text()
		expect(html).not.toMatch(/https?:|\/\/[a-z]/i)
		const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string)
		expect(assets.sort()).toEqual(['/swagger/assets/swagger-ui-bundle.js', '/swagger/assets/swagger-ui.css'])
		expect(html).toContain("url: '/swagger/json'")
		for (const [path, type, needle] of [
			['/swagger/assets/swagger-ui-bundle.js', 'text/javascript; charset=utf-8', 'SwaggerUIBundle'],
			['/swagger/assets/swagger-ui.css', 'text/css; charset=utf-8', '.swagger-ui']
		] as const) {
			const res = await fetch(server.url + path)
			const body = await res.text()
			expect({ path, status: res.status, type: res.headers.get('content-type'), found: body.includes(needle) }).toEqual({
				path,
				status: 200,
				type,
				found: true
			})
			expect(body.length).toBeGreaterThan(100_000)
		}
	})

	test('/swagger/json describes every route with its error responses', async () => {
		using w = world()
		await using server = await startServer(w.registryPath)
		const r = await fetchJson(`${server.url}/swagger/json`)
		expect({ status: r.status, type: r.headers.get('content-type') }).toEqual({ status: 200, type: expect.stringContaining('application/json') })
		const doc = r.body as { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, any>> }
		expect(doc.openapi).toMatch(/^3\./)
		expect(doc.info).toMatchObject({ title: 'imageworks-loader', version: readJson<{ version: string }>(join(ROOT, 'package.json')).version })

		// Every route of the app (the docs' own pages aside) and nothing else.
		const routes = createApp(w.deps)
			.routes.filter((route) => !route.path.startsWith('/swagger'))
			.map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, '{$1}')}`)
		const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`))
		expect(documented.sort()).toEqual(routes.sort())
		expect(documented.sort()).toEqual([
			'get /healthz',
			'get /metrics',
			'get /openai/v1/models',
			'get /v1/models',
			'get /v1/models/{name}/metrics',
			'post /openai/v1/chat/completions',
			'post /openai/v1/completions',
			'post /openai/v1/embeddings',
			'post /v1/models/{name}/bench',
			'post /v1/models/{name}/lock',
			'post /v1/models/{name}/metrics',
			'post /v1/models/{name}/unlock',
			'post /v1/probe/vision',
			'post /v1/select',
			'post /v1/verify'
		])

		const statuses = (method: string, path: string) => Object.keys(doc.paths[path]?.[method]?.responses ?? {}).sort()
		expect(statuses('get', '/healthz')).toEqual(['200', '503'])
		expect(statuses('get', '/v1/models')).toEqual(['200', '401', '413', '415', '422', '503'])
		expect(statuses('post', '/v1/select')).toEqual(['200', '400', '401', '404', '409', '413', '415', '422', '424', '503'])
		expect(statuses('post', '/v1/probe/vision')).toEqual(['200', '400', '401', '403', '404', '413', '415', '422', '502', '503', '504'])
		expect(statuses('get', '/v1/models/{name}/metrics')).toEqual(['200', '401', '404', '413', '415', '422', '503'])
		expect(statuses('post', '/v1/models/{name}/metrics')).toEqual(['200', '400', '401', '404', '413', '415', '422', '503'])
		expect(statuses('post', '/v1/models/{name}/bench')).toEqual(['200', '400', '401', '404', '413', '415', '422', '502', '503', '504'])
		expect(statuses('post', '/v1/verify')).toEqual(['200', '400', '401', '404', '409', '413', '415', '422', '503'])
		expect(statuses('post', '/v1/models/{name}/lock')).toEqual(['200', '400', '401', '404', '409', '413', '415', '422', '503'])
		expect(statuses('post', '/v1/models/{name}/unlock')).toEqual(['200', '400', '401', '404', '413', '415', '422', '503'])
		for (const route of ['chat/completions', 'completions', 'embeddings']) {
			expect(statuses('post', `/openai/v1/${route}`)).toEqual(['200', '400', '401', '404', '409', '413', '415', '422', '502', '503', '504'])
		}

		// Every error response says what it means and has the one error envelope.
		for (const [path, ops] of Object.entries(doc.paths)) {
			for (const [method, op] of Object.entries(ops)) {
				expect({ route: `${method} ${path}`, summary: typeof op.summary, tags: op.tags?.length }).toEqual({
					route: `${method} ${path}`,
					summary: 'string',
					tags: 1
				})
				for (const [status, response] of Object.entries<any>(op.responses)) {
					if (status === '200' || path === '/healthz') continue
					const schema = response.content?.['application/json']?.schema
					// the gateway's errors are in OpenAI's shape; everything else has the loader's envelope
					const openai = path.startsWith('/openai/')
					const required = openai ? schema?.properties?.error?.required : schema?.properties?.detail?.required
					expect({ route: `${method} ${path} ${status}`, description: typeof response.description, required }).toEqual({
						route: `${method} ${path} ${status}`,
						description: 'string',
						required: openai ? ['message', 'type', 'code'] : ['error', 'message']
					})
				}
			}
		}
	})
})
