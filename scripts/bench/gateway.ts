/**
 * @module
 * The OpenAI-compatible gateway against calling the backend directly, in the same run: the latency it
 * adds in front of a backend that answers at once, streamed tokens per second, and the server's memory
 * across 1,000 streamed requests.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from '../../test/helpers/binary.ts'
import { DATA, type Row, background, fmt, median, percentile, waitFor } from './lib.ts'

const PORT = 18451

/** A backend that answers at once (chat JSON), or streams `tokens` chunks `intervalMs` apart. */
function instantBackend(dir: string) {
	const script = join(dir, 'instant-backend.ts')
	writeFileSync(
		script,
		`const answer = JSON.stringify({ id: 'x', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })
const enc = new TextEncoder()
Bun.serve({ port: ${PORT}, hostname: '127.0.0.1', idleTimeout: 0, async fetch(req) {
	const body = await req.json()
	if (!body.stream) return new Response(answer, { headers: { 'content-type': 'application/json' } })
	const n = body.max_tokens ?? 100
	const interval = body.interval_ms ?? 2
	return new Response(new ReadableStream({ async start(c) {
		for (let i = 0; i < n; i++) {
			if (i) await Bun.sleep(interval)
			c.enqueue(enc.encode('data: ' + JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content: 't' + i + ' ' } }] }) + '\\n\\n'))
		}
		c.enqueue(enc.encode('data: [DONE]\\n\\n'))
		c.close()
	} }), { headers: { 'content-type': 'text/event-stream' } })
} })
`
	)
	return background([process.execPath, script])
}

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Wall time of one non-streamed request, ms. */
async function once(url: string): Promise<number> {
	const started = performance.now()
	const res = await post(url, { model: 'instant', messages: [{ role: 'user', content: 'hi' }] })
	await res.arrayBuffer()
	if (res.status !== 200) throw new Error(`${url}: ${res.status}`)
	return performance.now() - started
}

/** Tokens per second of one stream of `tokens` chunks, from the first token to the last. */
async function streamRate(url: string, tokens: number): Promise<number> {
	const res = await post(url, { model: 'instant', messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: tokens, interval_ms: 2 })
	const reader = (res.body as ReadableStream<Uint8Array>).getReader()
	const decoder = new TextDecoder()
	let first = 0
	let last = 0
	let seen = 0
	for (;;) {
		const { value, done } = await reader.read()
		if (done) break
		const count = decoder.decode(value).split('"content"').length - 1
		if (count) {
			last = performance.now()
			if (!seen) first = last
			seen += count
		}
	}
	if (seen !== tokens) throw new Error(`${url}: ${seen} of ${tokens} tokens`)
	return (seen - 1) / ((last - first) / 1000)
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

export async function gatewayBench(options: { quick: boolean }): Promise<Row[]> {
	const section = 'gateway'
	const dir = join(DATA, 'gateway')
	mkdirSync(dir, { recursive: true })
	using _backend = instantBackend(dir)
	const direct = `http://127.0.0.1:${PORT}/v1/chat/completions`
	await waitFor(`http://127.0.0.1:${PORT}/`).catch(() => undefined)
	const registry = join(dir, 'model_registry.json')
	writeFileSync(registry, JSON.stringify([{ name: 'instant', backend: 'vllm', backend_config: { base_url: `http://127.0.0.1:${PORT}/v1` } }]))
	await using server = await startServer(registry)
	const gateway = `${server.url}/openai/v1/chat/completions`
	const rows: Row[] = []

	// ---- added latency: blocks of sequential requests, alternating direct and through the gateway
	for (let i = 0; i < 300; i++) await Promise.all([once(direct), once(gateway)])
	const d: number[] = []
	const g: number[] = []
	const rounds = options.quick ? 4 : 10
	for (let round = 0; round < rounds; round++) {
		for (let i = 0; i < 200; i++) d.push(await once(direct))
		for (let i = 0; i < 200; i++) g.push(await once(gateway))
	}
	const addedP50 = percentile(g, 50) - percentile(d, 50)
	const addedP99 = percentile(g, 99) - percentile(d, 99)
	rows.push({
		section,
		name: 'added latency, non-streamed chat, backend that answers at once',
		figure: `+${fmt.ms(addedP50)} p50, +${fmt.ms(addedP99)} p99 (through the gateway: p50 ${fmt.ms(percentile(g, 50))}, p99 ${fmt.ms(percentile(g, 99))})`,
		baseline: `direct: p50 ${fmt.ms(percentile(d, 50))}, p99 ${fmt.ms(percentile(d, 99))} (${d.length} requests each)`,
		value: addedP99,
		goal: 'added p50 < 1 ms, p99 < 5 ms',
		met: addedP50 < 1 && addedP99 < 5
	})

	// ---- streamed tokens per second, alternating
	const tokens = 200
	const directRates: number[] = []
	const gatewayRates: number[] = []
	for (let i = 0; i < (options.quick ? 3 : 7); i++) {
		directRates.push(await streamRate(direct, tokens))
		gatewayRates.push(await streamRate(gateway, tokens))
	}
	const ratio = median(gatewayRates) / median(directRates)
	rows.push({
		section,
		name: `streamed tokens per second (${tokens} chunks, 2 ms apart)`,
		figure: `${median(gatewayRates).toFixed(0)} tokens/s through the gateway`,
		baseline: `direct ${median(directRates).toFixed(0)} tokens/s`,
		value: ratio,
		goal: '>= 0.95x direct',
		met: ratio >= 0.95
	})

	// ---- memory across 1,000 streamed requests (16 at a time)
	const batch = async (n: number) => {
		for (let done = 0; done < n; done += 16) await Promise.all(Array.from({ length: 16 }, () => streamRate(gateway, 20)))
	}
	await batch(160)
	const before = rssMb(server.proc.pid)
	const total = options.quick ? 320 : 1008
	await batch(total)
	Bun.gc(true)
	const after = rssMb(server.proc.pid)
	rows.push({
		section,
		name: `server RSS across ${total} streamed requests`,
		figure: `${before.toFixed(0)} MB -> ${after.toFixed(0)} MB (${after - before >= 0 ? '+' : ''}${(after - before).toFixed(1)} MB)`,
		baseline: 'after 160 warm-up streams',
		value: after - before,
		goal: '< +20 MB',
		met: after - before < 20
	})
	return rows
}
