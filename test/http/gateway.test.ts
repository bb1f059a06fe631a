/**
 * The OpenAI-compatible gateway, through the official `openai` npm client, against the compiled binary and
 * reference backends on loopback (one that sees, one that refuses images, one that hangs, one that dies
 * mid-stream). The real llama.cpp server is in test/backend/gateway-llama.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { statePathFor } from '../../src/core/state.ts'
import { type Server, runBinary, startServer } from '../helpers/binary.ts'
import { circlePng, pngDataUri } from '../helpers/png.ts'
import { type ReferenceBackend, referenceBackend } from '../helpers/reference-backend.ts'
import { entry, tempDir, writeRegistry } from '../helpers/registry.ts'

const SLOW = 60_000
const TOKEN = 'gateway-test-token'

let seeing: ReferenceBackend
let refusing: ReferenceBackend
let dying: ReferenceBackend
let hanging: ReferenceBackend
let server: Server
let registry: string
let client: OpenAI
let dir: ReturnType<typeof tempDir>

/** A red circle as a data URL: the seeing backend answers "red". */
const RED_IMAGE = () => pngDataUri(circlePng([220, 30, 30]))

beforeAll(async () => {
	dir = tempDir()
	seeing = referenceBackend({ mode: 'seeing', firstTokenMs: 150, tokenIntervalMs: 20 })
	refusing = referenceBackend({ mode: 'refuse' })
	dying = referenceBackend({ mode: 'seeing', firstTokenMs: 20, tokenIntervalMs: 10, streamBreakAfter: 3 })
	hanging = referenceBackend({ mode: 'hang', hangMs: 30_000 })
	const model = join(dir.path, 'locked-model')
	mkdirSync(model)
	writeFileSync(join(model, 'weights.bin'), 'original weights')
	registry = writeRegistry(join(dir.path, 'model_registry.json'), [
		entry('seer', {
			baseUrl: seeing.endpoint,
			servedModelId: 'ref-internal-id',
			capabilities: { vision: true, tools: true },
			aliases: ['seer-alias'],
			roles: ['caption'],
			rolePriority: { caption: 1 }
		}),
		entry('text-only', { baseUrl: seeing.endpoint }),
		entry('blind', { baseUrl: refusing.endpoint, capabilities: { vision: true } }),
		{ ...entry('probed-blind', { baseUrl: seeing.endpoint, capabilities: { vision: true } }), probes: { vision: { vision_ok: false, probe_version: 'v1' } } },
		entry('dies', { baseUrl: dying.endpoint }),
		entry('hangs', { baseUrl: hanging.endpoint }),
		entry('down', { baseUrl: 'http://127.0.0.1:9/v1' }),
		entry('locked', { baseUrl: seeing.endpoint, modelPath: model }),
		entry('old', { baseUrl: seeing.endpoint, deprecated: true })
	])
	const lock = await runBinary(['--registry', registry, 'lock', 'locked', '--set-expected'])
	expect(lock.exitCode).toBe(0)
	appendFileSync(join(model, 'weights.bin'), ' tampered') // drifted since the lock
	server = await startServer(registry, { env: { IMAGEWORKS_API_TOKEN: TOKEN, IMAGEWORKS_PROBE_TIMEOUT: '2' } })
	client = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: TOKEN, maxRetries: 0 })
}, SLOW)

afterAll(async () => {
	await server?.stop()
	for (const b of [seeing, refusing, dying, hanging]) await b?.stop()
	dir?.[Symbol.dispose]()
})

const userText = (text: string) => [{ role: 'user' as const, content: text }]

describe('the gateway with the openai client', () => {
	test('lists the registry in OpenAI shape, without deprecated models', async () => {
		const ids: string[] = []
		for await (const model of client.models.list()) {
			expect(model.object).toBe('model')
			expect(typeof model.created).toBe('number')
			ids.push(model.id)
		}
		expect(ids).toEqual(['blind', 'dies', 'down', 'hangs', 'locked', 'probed-blind', 'seer', 'text-only'])
	})

	test('a chat with an image reaches the model by its internal id and comes back under the name asked for', async () => {
		const answer = await client.chat.completions.create({
			model: 'seer',
			messages: [{ role: 'user', content: [{ type: 'text', text: 'What colour is the shape?' }, { type: 'image_url', image_url: { url: RED_IMAGE() } }] }]
		})
		expect(answer.model).toBe('seer')
		expect(answer.choices[0]?.message.content?.toLowerCase()).toContain('red')
		expect(seeing.requests.at(-1)?.['model']).toBe('ref-internal-id')
	})

	test('aliases and role:<role> resolve as select does', async () => {
		for (const name of ['seer-alias', 'role:caption']) {
			const answer = await client.chat.completions.create({ model: name, messages: userText('hello') })
			expect(answer.model).toBe(name)
			expect(seeing.requests.at(-1)?.['model']).toBe('ref-internal-id')
		}
	})

	test('a stream is passed through as it arrives, and measured into the rolling window', async () => {
		const before = (await (await fetch(`${server.url}/v1/models/seer/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { rolling_samples: number }
		const started = performance.now()
		const arrivals: number[] = []
		let text = ''
		const stream = await client.chat.completions.create({ model: 'seer', messages: userText('count'), stream: true, max_tokens: 10, stream_options: { include_usage: true } })
		for await (const chunk of stream) {
			const piece = chunk.choices[0]?.delta?.content
			if (piece) {
				arrivals.push(performance.now() - started)
				text += piece
			}
		}
		expect(text).toBe(Array.from({ length: 10 }, (_, i) => `tok${i} `).join(''))
		// not buffered: the first token arrived long before the last (9 intervals of 20 ms apart)
		expect((arrivals.at(-1) as number) - (arrivals[0] as number)).toBeGreaterThan(120)
		const after = (await (await fetch(`${server.url}/v1/models/seer/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
			rolling_samples: number
			ttft_ms_p50: number
		}
		expect(after.rolling_samples).toBe(before.rolling_samples + 1)
		const db = new Database(statePathFor(registry), { readonly: true })
		try {
			const last = db.query("SELECT ttft_ms, tokens_generated, source FROM samples WHERE model = 'seer' ORDER BY id DESC LIMIT 1").get() as {
				ttft_ms: number
				tokens_generated: number
				source: string
			}
			expect(last.source).toBe('gateway')
			expect(last.tokens_generated).toBe(10)
			expect(last.ttft_ms).toBeGreaterThan(140)
			expect(last.ttft_ms).toBeLessThan(1000)
		} finally {
			db.close()
		}
	})

	test('each request is one JSON access-log line, without the prompt or the answer; Prometheus counts it', async () => {
		const secret = `prompt-${crypto.randomUUID()}`
		await client.chat.completions.create({ model: 'text-only', messages: userText(secret) })
		await Bun.sleep(50)
		const lines = server
			.output()
			.split('\n')
			.filter((l) => l.startsWith('{') && l.includes('"gateway"'))
		const last = JSON.parse(lines.at(-1) as string) as Record<string, unknown>
		expect(last).toMatchObject({ gateway: 'chat/completions', requested: 'text-only', model: 'text-only', status: 200, outcome: 'ok', stream: false })
		expect(typeof last['duration_ms']).toBe('number')
		expect(server.output()).not.toContain(secret)
		expect(server.output()).not.toContain('Red.')
		const prom = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()
		expect(prom).toMatch(/imageworks_gateway_requests_total\{model="text-only",status="200"\} [1-9]/)
		expect(prom).toContain('imageworks_gateway_ttft_seconds_bucket{le="0.01",model="seer"}')
		expect(prom).toContain('imageworks_gateway_tokens_per_second_count{model="seer"}')
	})
})

describe('refused before forwarding, in OpenAI error shape', () => {
	const refused = async (request: Promise<unknown>) => {
		const error = (await request.then(
			() => undefined,
			(e: unknown) => e
		)) as InstanceType<typeof OpenAI.APIError>
		expect(error).toBeInstanceOf(OpenAI.APIError)
		return error
	}
	const image = () => [{ role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: RED_IMAGE() } }] }]

	test('an image to a model without vision: 400 naming the gap; nothing reaches the backend', async () => {
		const count = seeing.requests.length
		const error = await refused(client.chat.completions.create({ model: 'text-only', messages: image() }))
		expect(error.status).toBe(400)
		expect(error.code).toBe('model_not_capable')
		expect(error.message).toContain('vision')
		expect(seeing.requests.length).toBe(count)
	})

	test('an image to a model whose vision probe failed: 400', async () => {
		const error = await refused(client.chat.completions.create({ model: 'probed-blind', messages: image() }))
		expect(error.status).toBe(400)
		expect(error.code).toBe('model_cannot_see')
	})

	test('tools need tools, embeddings need embedding', async () => {
		const tools = await refused(
			client.chat.completions.create({
				model: 'text-only',
				messages: userText('weather?'),
				tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } }]
			})
		)
		expect(tools.status).toBe(400)
		expect(tools.message).toContain('tools')
		const embeddings = await refused(client.embeddings.create({ model: 'seer', input: 'hello' }))
		expect(embeddings.status).toBe(400)
		expect(embeddings.message).toContain('embedding')
	})

	test('an unknown model: 404 with a did-you-mean', async () => {
		const error = await refused(client.chat.completions.create({ model: 'seeer', messages: userText('hi') }))
		expect(error.status).toBe(404)
		expect(error.code).toBe('model_not_found')
		expect(error.message).toContain('seer')
	})

	test('a locked model whose files drifted: 409', async () => {
		const error = await refused(client.chat.completions.create({ model: 'locked', messages: userText('hi') }))
		expect(error.status).toBe(409)
		expect(error.code).toBe('model_locked')
	})

	test('a wrong token: 401 in OpenAI shape', async () => {
		const stranger = new OpenAI({ baseURL: `${server.url}/openai/v1`, apiKey: 'wrong', maxRetries: 0 })
		const error = await refused(stranger.models.list())
		expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
		expect(error.code).toBe('unauthorized')
	})

	test('a body that is not JSON: 400 in OpenAI shape', async () => {
		const res = await fetch(`${server.url}/openai/v1/chat/completions`, {
			method: 'POST',
			headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
			body: '{"model": '
		})
		expect(res.status).toBe(400)
		const body = (await res.json()) as { error: { type: string; code: string; message: string } }
		expect(body.error.type).toBe('invalid_request_error')
		expect(body.error.code).toBe('malformed_body')
	})
})

describe('backends that fail', () => {
	test('a backend that refuses images: its own 400 comes back as it was', async () => {
		const error = (await client.chat.completions
			.create({ model: 'blind', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: RED_IMAGE() } }] }] })
			.catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>
		expect(error.status).toBe(400)
		expect(error.message).toContain('does not support image input')
	})

	test('down: 502; hanging: 504 after the timeout', async () => {
		const down = (await client.chat.completions.create({ model: 'down', messages: userText('hi') }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>
		expect(down.status).toBe(502)
		expect(down.code).toBe('backend_unavailable')
		const started = performance.now()
		const hung = (await client.chat.completions.create({ model: 'hangs', messages: userText('hi') }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>
		expect(hung.status).toBe(504)
		expect(hung.code).toBe('backend_timeout')
		expect(performance.now() - started).toBeLessThan(5000)
	}, SLOW)

	test('a backend that dies mid-stream: the client gets an error event, and a failed sample is recorded', async () => {
		const received: string[] = []
		const error = await (async () => {
			const stream = await client.chat.completions.create({ model: 'dies', messages: userText('go'), stream: true, max_tokens: 10 })
			for await (const chunk of stream) {
				const piece = chunk.choices[0]?.delta?.content
				if (piece) received.push(piece)
			}
		})().catch((e: unknown) => e)
		expect(received).toEqual(['tok0 ', 'tok1 ', 'tok2 '])
		expect(error).toBeInstanceOf(OpenAI.APIError)
		expect(String((error as Error).message)).toContain('ended the stream before it was complete')
		await Bun.sleep(50)
		const db = new Database(statePathFor(registry), { readonly: true })
		try {
			const row = db.query("SELECT source, tokens_generated FROM samples WHERE model = 'dies' ORDER BY id DESC LIMIT 1").get() as { source: string; tokens_generated: number }
			expect(row).toEqual({ source: 'gateway_failed', tokens_generated: 3 })
		} finally {
			db.close()
		}
		const metrics = (await (await fetch(`${server.url}/v1/models/dies/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { rolling_samples: number }
		expect(metrics.rolling_samples).toBe(0) // failures stay out of the window of answers
	})

	test('a client that disconnects aborts the upstream request at once', async () => {
		seeing.behaviour.tokenIntervalMs = 200
		try {
			const controller = new AbortController()
			const stream = await client.chat.completions.create({ model: 'seer', messages: userText('slow'), stream: true, max_tokens: 50 }, { signal: controller.signal })
			let seen = 0
			await (async () => {
				for await (const chunk of stream) {
					if (chunk.choices[0]?.delta?.content && ++seen === 2) controller.abort()
				}
			})().catch(() => undefined)
			const deadline = performance.now() + 1000
			while (seeing.inFlight() > 0 && performance.now() < deadline) await Bun.sleep(10)
			expect(seeing.inFlight()).toBe(0)
		} finally {
			seeing.behaviour.tokenIntervalMs = 20
		}
	})

	test('64 concurrent streams all complete', async () => {
		seeing.behaviour.firstTokenMs = 50
		const streams = Array.from({ length: 64 }, async () => {
			const stream = await client.chat.completions.create({ model: 'seer', messages: userText('hi'), stream: true, max_tokens: 8 })
			let text = ''
			for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
			return text
		})
		const texts = await Promise.all(streams)
		expect(texts.every((t) => t === Array.from({ length: 8 }, (_, i) => `tok${i} `).join(''))).toBe(true)
		expect(seeing.peakConcurrency()).toBeGreaterThanOrEqual(48)
	}, SLOW)
})
