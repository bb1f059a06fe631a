/**
 * Against the real llama.cpp server (test/helpers/llama.ts) on the tiny random-weight models, through
 * plain fetch. Port of the server-level cases of tests/backend/test_llama_backend.py; the probe and
 * bench cases come with those features.
 *
 * The first run on a fresh clone installs test/.venv (compiling llama.cpp: a few minutes), hence the
 * long timeout of the first hook.
 */
import { beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnScript } from '../helpers/child.ts'
import { fixturesDir, sharedLlamaServer, startLlamaServer, type LlamaServer } from '../helpers/llama.ts'
import { BLUE, circlePng, pngDataUri, RED, type Rgb } from '../helpers/png.ts'
import { BACKEND_DIR, ensureVenv, processGroupAlive, run } from '../helpers/python.ts'
import { tempDir } from '../helpers/registry.ts'

/** Installing the venv from scratch compiles llama.cpp: about 2 minutes on 2 cores, more on a busy machine. */
const INSTALL_TIMEOUT = 15 * 60_000

let server: LlamaServer
beforeAll(async () => {
	server = await sharedLlamaServer()
}, INSTALL_TIMEOUT)

type Json = Record<string, any>

async function post(path: string, body: Json): Promise<Response> {
	return fetch(server.endpoint + path, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify(body)
	})
}

/** A chat completion at temperature 0 (greedy, so deterministic); asserts 200 and returns the body. */
async function ask(model: string, content: string | Json[], maxTokens = 8): Promise<Json> {
	const res = await post('/chat/completions', { model, temperature: 0, max_tokens: maxTokens, messages: [{ role: 'user', content }] })
	const text = await res.text()
	expect({ status: res.status, text: res.status === 200 ? '' : text }).toEqual({ status: 200, text: '' })
	return JSON.parse(text) as Json
}

describe('the llama.cpp server', () => {
	test('lists the text, vision and embedding models', async () => {
		const res = await fetch(`${server.endpoint}/models`)
		expect(res.status).toBe(200)
		const body = (await res.json()) as Json
		expect(body['object']).toBe('list')
		expect(body['data'].map((m: Json) => m['id'])).toEqual(['tiny-text', 'tiny-vision', 'tiny-embed'])
		expect(server.models).toEqual({ text: 'tiny-text', vision: 'tiny-vision', embedding: 'tiny-embed' })
	})

	test('a chat completion on the text model returns text, the same at temperature 0', async () => {
		const out = await ask(server.models.text, 'Hello')
		const choice = out['choices'][0]
		expect(out['object']).toBe('chat.completion')
		expect(out['model']).toBe(server.models.text)
		expect(choice['message']['role']).toBe('assistant')
		expect(typeof choice['message']['content']).toBe('string')
		expect(choice['message']['content'].length).toBeGreaterThan(0)
		expect(['stop', 'length']).toContain(choice['finish_reason'])
		expect(out['usage']['completion_tokens']).toBeGreaterThan(0)
		expect(out['usage']['prompt_tokens']).toBeGreaterThan(0)
		expect((await ask(server.models.text, 'Hello'))['choices'][0]['message']['content']).toBe(choice['message']['content'])
	})

	test('a streamed chat completion is SSE ending in data: [DONE], with the same answer', async () => {
		const messages = [{ role: 'user', content: 'Hello' }]
		const res = await post('/chat/completions', { model: server.models.text, temperature: 0, max_tokens: 8, stream: true, messages })
		expect(res.status).toBe(200)
		expect(res.headers.get('content-type')).toStartWith('text/event-stream')
		const events = (await res.text())
			.split(/\r?\n/)
			.filter(line => line.startsWith('data: '))
			.map(line => line.slice('data: '.length))
		expect(events.length).toBeGreaterThan(2)
		expect(events.at(-1)).toBe('[DONE]')
		const chunks = events.slice(0, -1).map(data => JSON.parse(data) as Json)
		expect(chunks.every(c => c['object'] === 'chat.completion.chunk')).toBe(true)
		const streamed = chunks.map(c => c['choices'][0]?.['delta']?.['content'] ?? '').join('')
		expect(streamed.length).toBeGreaterThan(0)
		expect(streamed).toBe((await ask(server.models.text, 'Hello'))['choices'][0]['message']['content'])
	})

	test('embeddings on the BERT model: one 64-wide vector per input', async () => {
		const res = await post('/embeddings', { model: server.models.embedding, input: ['a red shape', 'a blue shape'] })
		expect(res.status).toBe(200)
		const data = ((await res.json()) as Json)['data'] as Json[]
		expect(data.map(d => d['index'])).toEqual([0, 1])
		const [red, blue] = data.map(d => d['embedding'] as number[])
		expect(red).toHaveLength(64) // mean pooling: one vector, not one per token
		expect(red!.every(Number.isFinite)).toBe(true)
		expect(blue).toHaveLength(64)
		expect(blue).not.toEqual(red!)
	})

	test('the image really reaches the model: red and blue answer differently, the same image alike', async () => {
		const answer = async (colour: Rgb) => {
			const out = await ask(server.models.vision, [
				{ type: 'text', text: 'What colour is the shape?' },
				{ type: 'image_url', image_url: { url: pngDataUri(circlePng(colour)) } }
			])
			return { text: out['choices'][0]['message']['content'] as string, promptTokens: out['usage']['prompt_tokens'] as number }
		}
		const red = await answer(RED)
		const blue = await answer(BLUE)
		expect(red.text.length).toBeGreaterThan(0)
		expect(blue.text).not.toBe(red.text)
		expect((await answer(RED)).text).toBe(red.text)
		expect(red.promptTokens).toBeGreaterThan(100) // the llava prompt plus the 16 image tokens
	})
})

describe('the fixtures and the process', () => {
	test('the GGUF fixtures are tiny and deterministic', async () => {
		using dir = tempDir('gguf-')
		const python = await ensureVenv()
		await run([python, join(BACKEND_DIR, 'gguf_models.py'), dir.path])
		let total = 0
		for (const name of ['tiny-llama.gguf', 'tiny-mmproj.gguf', 'tiny-bert.gguf']) {
			total += statSync(join(dir.path, name)).size
			expect(readFileSync(join(dir.path, name)).equals(readFileSync(join(fixturesDir(), name)))).toBe(true)
		}
		expect(total).toBeLessThan(1_000_000)
	})

	test('stop() leaves no process of the server behind', async () => {
		let pid: number
		let endpoint: string
		{
			await using own = await startLlamaServer()
			;({ pid, endpoint } = own)
			expect(own.endpoint).not.toBe(server.endpoint)
			expect(processGroupAlive(pid)).toBe(true)
		}
		expect(processGroupAlive(pid)).toBe(false)
		await expect(fetch(`${endpoint}/models`)).rejects.toThrow()
	}, 120_000)

	test('the server dies with the test process even when no hook runs (SIGKILL)', async () => {
		using dir = tempDir('llama-orphan-')
		const helper = JSON.stringify(new URL('../helpers/llama.ts', import.meta.url).pathname)
		await using child = spawnScript(
			dir.path,
			'orphan.ts',
			`import { startLlamaServer } from ${helper}\nconst s = await startLlamaServer()\nconsole.log(s.pid)\nsetInterval(() => {}, 1 << 30) // alive until killed\n`
		)
		const pid = Number(await child.line())
		expect(processGroupAlive(pid)).toBe(true)
		child.proc.kill('SIGKILL')
		await child.proc.exited
		// The tether reads EOF on its stdin once the pipe's only writer is gone, and kills its group.
		const deadline = Date.now() + 10_000
		while (processGroupAlive(pid) && Date.now() < deadline) await Bun.sleep(20)
		expect(processGroupAlive(pid)).toBe(false)
	}, 120_000)
})
