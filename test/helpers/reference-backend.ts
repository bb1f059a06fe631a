/**
 * A small OpenAI-compatible reference backend for tests, on a real loopback socket (port 0).
 *
 * Unlike a tiny random model it answers *correctly*: in `seeing` mode it decodes the attached image and
 * names the palette colour of its shape, so the probe's `verified` path is proven end to end. Other modes
 * model real failure shapes: a text-only guesser (`constant`), an image refusal, a hang, garbage, a 500,
 * an auth failure, and a streaming server with known delays (for TTFT and throughput checks) that can
 * leave out usage or break off mid-stream. Tests change `behaviour` between requests; every POST body is
 * kept in `requests`.
 *
 * The images it reads are decoded here, independently of the product's image code: PNG by a small
 * decoder over node:zlib (8-bit, any colour type, all five filters), anything else by `Bun.Image` first
 * re-encoded as PNG.
 *
 * A port of the Python suite's tests/backend/reference.py.
 */
import { inflateSync } from 'node:zlib'

/** What the reference backend does; tests change it between requests. */
export interface Behaviour {
	/** How it answers chat completions (and, for error500, auth and hang, streams too). */
	mode: 'seeing' | 'constant' | 'refuse' | 'hang' | 'garbage' | 'error500' | 'auth'
	/** The answer in `constant` mode. */
	constant: string
	/** Put the answer in `reasoning_content` and leave `content` empty. */
	inReasoning: boolean
	/** `hang` mode: milliseconds before answering (as `seeing` would) unless the client gives up first. */
	hangMs: number
	/** What `GET /v1/models` lists. */
	models: string[]
	/** Streaming: delay before the first content chunk. */
	firstTokenMs: number
	/** Streaming: delay between content chunks. */
	tokenIntervalMs: number
	/** Streaming: send the usage chunk when the client asks for it (`stream_options.include_usage`). */
	streamUsage: boolean
	/** Streaming: end the stream after this many content chunks, without a finish chunk or [DONE]. */
	streamBreakAfter: number | null
}

export const DEFAULT_BEHAVIOUR: Readonly<Behaviour> = {
	mode: 'seeing',
	constant: 'Red.',
	inReasoning: false,
	hangMs: 30_000,
	models: ['ref-model'],
	firstTokenMs: 200,
	tokenIntervalMs: 10,
	streamUsage: true,
	streamBreakAfter: null
}

/** The fixed palette of the loader's challenge (the backend's own copy, on purpose). */
export const PALETTE: Readonly<Record<string, readonly [number, number, number]>> = {
	red: [220, 30, 30],
	orange: [245, 140, 20],
	yellow: [245, 220, 20],
	green: [30, 160, 60],
	blue: [30, 70, 220],
	purple: [130, 40, 170],
	black: [15, 15, 15]
}

/** A chat-completions request body as the backend received it. */
export type ChatRequest = Record<string, any>

/** A running reference backend; stopped (connections closed, hangs released) when the scope ends. */
export interface ReferenceBackend {
	/** `http://127.0.0.1:PORT/v1` */
	endpoint: string
	port: number
	behaviour: Behaviour
	/** Every POST body received, in order. */
	requests: ChatRequest[]
	/** The most chat completions (streamed or not) that were open at the same time. */
	peakConcurrency(): number
	/** Content chunks streamed so far, over all requests (to act mid-stream). */
	chunksSent(): number
	/** Chat completions open right now. */
	inFlight(): number
	/** Stop listening and drop open connections: later requests are refused. */
	stop(): Promise<void>
	[Symbol.asyncDispose](): Promise<void>
}

// ---------------------------------------------------------------- seeing

/** Decoded pixels, RGB, row-major. */
export interface Pixels {
	width: number
	height: number
	rgb: Uint8Array
}

/** Decode an 8-bit, non-interlaced PNG of any colour type into RGB (alpha dropped). */
export function decodePng(data: Uint8Array): Pixels {
	const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
	if (b.length < 8 || b.readUInt32BE(0) !== 0x89504e47 || b.readUInt32BE(4) !== 0x0d0a1a0a) throw new Error('not a PNG')
	let width = 0
	let height = 0
	let colourType = -1
	let palette: Buffer | undefined
	const idat: Buffer[] = []
	for (let at = 8; at + 8 <= b.length; ) {
		const length = b.readUInt32BE(at)
		const type = b.toString('latin1', at + 4, at + 8)
		const body = b.subarray(at + 8, at + 8 + length)
		if (body.length < length) throw new Error(`PNG chunk ${type} is truncated`)
		if (type === 'IHDR') {
			width = body.readUInt32BE(0)
			height = body.readUInt32BE(4)
			const [depth, ct, , , interlace] = [body[8], body[9], body[10], body[11], body[12]]
			if (depth !== 8 || interlace !== 0) throw new Error(`unsupported PNG: bit depth ${depth}, interlace ${interlace}`)
			colourType = ct as number
		} else if (type === 'PLTE') palette = body
		else if (type === 'IDAT') idat.push(body)
		else if (type === 'IEND') break
		at += 12 + length
	}
	const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType]
	if (!channels || !width || !height) throw new Error(`unsupported PNG colour type ${colourType}`)
	const raw = inflateSync(Buffer.concat(idat))
	const stride = width * channels
	if (raw.length < (stride + 1) * height) throw new Error('PNG image data is truncated')
	const out = new Uint8Array(stride * height)
	for (let y = 0; y < height; y++) {
		const filter = raw[y * (stride + 1)]
		const src = y * (stride + 1) + 1
		const row = y * stride
		for (let x = 0; x < stride; x++) {
			const a = x >= channels ? (out[row + x - channels] as number) : 0
			const up = y ? (out[row - stride + x] as number) : 0
			const c = x >= channels && y ? (out[row - stride + x - channels] as number) : 0
			const value = raw[src + x] as number
			let predicted: number
			switch (filter) {
				case 0:
					predicted = 0
					break
				case 1:
					predicted = a
					break
				case 2:
					predicted = up
					break
				case 3:
					predicted = (a + up) >> 1
					break
				case 4: {
					const p = a + up - c
					const pa = Math.abs(p - a)
					const pb = Math.abs(p - up)
					const pc = Math.abs(p - c)
					predicted = pa <= pb && pa <= pc ? a : pb <= pc ? up : c
					break
				}
				default:
					throw new Error(`bad PNG filter ${filter}`)
			}
			out[row + x] = (value + predicted) & 0xff
		}
	}
	const rgb = new Uint8Array(width * height * 3)
	for (let i = 0; i < width * height; i++) {
		const p = i * channels
		if (colourType === 3) {
			const index = (out[p] as number) * 3
			if (!palette || index + 2 >= palette.length) throw new Error('PNG palette index out of range')
			rgb.set(palette.subarray(index, index + 3), i * 3)
		} else if (colourType === 0 || colourType === 4) {
			rgb.fill(out[p] as number, i * 3, i * 3 + 3)
		} else rgb.set(out.subarray(p, p + 3), i * 3)
	}
	return { width, height, rgb }
}

/** Decode any image Bun can read (PNG directly; JPEG, WebP, GIF, BMP through Bun.Image as PNG). */
export async function decodeImage(data: Uint8Array): Promise<Pixels> {
	const isPng = data.length > 8 && data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47
	return decodePng(isPng ? data : await new Bun.Image(data.slice()).png().bytes())
}

/** The palette colour nearest to `rgb`. */
export function nearestPaletteColour(rgb: readonly [number, number, number]): string {
	let best = ''
	let bestDistance = Infinity
	for (const [name, colour] of Object.entries(PALETTE)) {
		const d = (colour[0] - rgb[0]) ** 2 + (colour[1] - rgb[1]) ** 2 + (colour[2] - rgb[2]) ** 2
		if (d < bestDistance) [best, bestDistance] = [name, d]
	}
	return best
}

/** Name the palette colour nearest to the most common non-white pixel colour. */
export async function dominantColourName(data: Uint8Array): Promise<string> {
	const { rgb } = await decodeImage(data)
	const counts = new Map<number, number>()
	for (let i = 0; i + 2 < rgb.length; i += 3) {
		const [r, g, b] = [rgb[i] as number, rgb[i + 1] as number, rgb[i + 2] as number]
		if (r + g + b >= 720) continue // the white background
		const key = (r << 16) | (g << 8) | b
		counts.set(key, (counts.get(key) ?? 0) + 1)
	}
	let top = -1
	let topCount = 0
	for (const [key, count] of counts) if (count > topCount || (count === topCount && key > top)) [top, topCount] = [key, count]
	if (top < 0) throw new Error('the image is all white')
	return nearestPaletteColour([(top >> 16) & 0xff, (top >> 8) & 0xff, top & 0xff])
}

/** What a seeing model answers: the colour for the challenge, a sentence for "Describe ...". */
async function see(body: ChatRequest): Promise<string> {
	for (const message of Array.isArray(body['messages']) ? body['messages'] : []) {
		const content = message?.content
		if (!Array.isArray(content)) continue
		const prompt = content
			.filter((p: any) => p?.type === 'text')
			.map((p: any) => String(p.text ?? ''))
			.join(' ')
		for (const part of content) {
			if (part?.type !== 'image_url') continue
			const uri = String(part.image_url?.url ?? '')
			let colour: string
			try {
				colour = await dominantColourName(new Uint8Array(Buffer.from(uri.slice(uri.indexOf(',') + 1), 'base64')))
			} catch {
				return 'I cannot make out this image.'
			}
			if (prompt.startsWith('Describe')) return `A picture dominated by ${colour}.`
			return `${colour[0]?.toUpperCase()}${colour.slice(1)}.`
		}
	}
	return 'I see no image.'
}

// ---------------------------------------------------------------- the server

const json = (status: number, data: unknown) =>
	new Response(JSON.stringify(data), { status, headers: { 'content-type': 'application/json' } })

/** Start a reference backend on 127.0.0.1, port 0. Use with `await using`. */
export function referenceBackend(behaviour: Partial<Behaviour> = {}): ReferenceBackend {
	const state: Behaviour = { ...DEFAULT_BEHAVIOUR, models: [...DEFAULT_BEHAVIOUR.models], ...behaviour }
	const requests: ChatRequest[] = []
	const stopping = new AbortController()
	let open = 0
	let peak = 0
	let chunks = 0

	/** Sleep `ms`, cut short when the backend stops or `signal` (the client's request) aborts. */
	const pause = (ms: number, signal?: AbortSignal) =>
		new Promise<void>((resolve) => {
			if (ms <= 0) return resolve()
			const signals = [stopping.signal, ...(signal ? [signal] : [])]
			const done = () => {
				clearTimeout(timer)
				for (const s of signals) s.removeEventListener('abort', done)
				resolve()
			}
			const timer = setTimeout(done, ms)
			for (const s of signals) s.addEventListener('abort', done, { once: true })
		})

	const failure = (b: Behaviour): Response | undefined => {
		if (b.mode === 'refuse') {
			return json(400, { error: { message: 'This model does not support image input.', type: 'invalid_request_error' } })
		}
		if (b.mode === 'error500') return json(500, { error: { message: 'CUDA out of memory' } })
		if (b.mode === 'auth') return json(401, { error: { message: 'invalid api key' } })
		if (b.mode === 'garbage') return new Response('<html>definitely not json', { status: 200, headers: { 'content-type': 'text/html' } })
		return undefined
	}

	const stream = (body: ChatRequest, signal: AbortSignal, finished: () => void): Response => {
		const b = state
		const n = Number(body['max_tokens'] ?? 16) || 16
		const encoder = new TextEncoder()
		let cancelled = false
		const readable = new ReadableStream<Uint8Array>({
			async start(controller) {
				const send = (text: string) => {
					if (cancelled) return
					try {
						controller.enqueue(encoder.encode(text))
					} catch {
						cancelled = true // the connection is gone
					}
				}
				const emit = (obj: unknown) => send(`data: ${JSON.stringify(obj)}\n\n`)
				try {
					emit({ choices: [{ index: 0, delta: { role: 'assistant' } }] })
					await pause(b.firstTokenMs, signal)
					for (let i = 0; i < n; i++) {
						if (b.streamBreakAfter !== null && i >= b.streamBreakAfter) return // abrupt end: no [DONE]
						if (b.mode === 'garbage' && i === 2) return send('data: {not json\n\n')
						if (i) await pause(b.tokenIntervalMs, signal)
						if (cancelled || stopping.signal.aborted) return
						emit({ choices: [{ index: 0, delta: { content: `tok${i} ` } }] })
						chunks++
					}
					emit({ choices: [{ index: 0, delta: {}, finish_reason: 'length' }] })
					if (b.streamUsage && body['stream_options']?.include_usage) {
						emit({ choices: [], usage: { prompt_tokens: 5, completion_tokens: n, total_tokens: n + 5 } })
					}
					send('data: [DONE]\n\n')
				} finally {
					finished()
					if (!cancelled) {
						try {
							controller.close()
						} catch {
							// already closed by the server stopping
						}
					}
				}
			},
			cancel() {
				cancelled = true
				finished()
			}
		})
		return new Response(readable, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } })
	}

	const server = Bun.serve({
		hostname: '127.0.0.1',
		port: 0,
		idleTimeout: 0, // hangs and slow streams are the point; the client's timeout decides
		async fetch(req) {
			const b = state
			const path = new URL(req.url).pathname.replace(/\/+$/, '')
			if (req.method === 'GET') {
				if (path !== '/v1/models') return json(404, { error: { message: 'not found' } })
				if (b.mode === 'error500') return json(500, { error: { message: 'boom' } })
				if (b.mode === 'auth') return json(401, { error: { message: 'invalid api key' } })
				return json(200, { object: 'list', data: b.models.map((id) => ({ id, object: 'model' })) })
			}
			let body: ChatRequest
			try {
				const text = await req.text()
				body = text ? (JSON.parse(text) as ChatRequest) : {}
			} catch {
				body = {}
			}
			requests.push(body)
			if (req.method !== 'POST' || path !== '/v1/chat/completions') return json(404, { error: { message: 'not found' } })
			peak = Math.max(peak, ++open)
			let closed = false
			const finished = () => {
				if (!closed) open--
				closed = true
			}
			let streaming = false
			try {
				if (b.mode === 'hang') {
					await pause(b.hangMs, req.signal)
					if (req.signal.aborted || stopping.signal.aborted) return new Response(null, { status: 499 }) // nobody is listening
				}
				if (body['stream']) {
					if (b.mode !== 'garbage') {
						const failed = failure(b)
						if (failed) return failed
					}
					streaming = true
					return stream(body, req.signal, finished)
				}
				const failed = failure(b)
				if (failed) return failed
				const answer = b.mode === 'constant' ? b.constant : await see(body)
				const message: Record<string, string> = { role: 'assistant', content: b.inReasoning ? '' : answer }
				if (b.inReasoning) message['reasoning_content'] = answer
				return json(200, {
					id: 'x',
					object: 'chat.completion',
					model: body['model'],
					choices: [{ index: 0, message, finish_reason: 'stop' }],
					usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 }
				})
			} finally {
				if (!streaming) finished()
			}
		}
	})

	let stopped: Promise<void> | undefined
	const stop = () => {
		stopped ??= (async () => {
			stopping.abort()
			await server.stop(true)
		})()
		return stopped
	}
	const port = server.port as number
	return {
		endpoint: `http://127.0.0.1:${port}/v1`,
		port,
		behaviour: state,
		requests,
		peakConcurrency: () => peak,
		chunksSent: () => chunks,
		inFlight: () => open,
		stop,
		[Symbol.asyncDispose]: stop
	}
}

/** A loopback port that nothing listens on (bound, read, released): connections to it are refused. */
export async function deadPort(): Promise<number> {
	const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const port = server.port
	server.stop(true)
	return port
}

/**
 * A socket server that accepts connections and never answers (a wedged server), closed when the scope
 * ends. `endpoint` is its `/v1` URL.
 */
export function silentServer(): { endpoint: string; port: number; [Symbol.dispose](): void } {
	const server = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	return {
		endpoint: `http://127.0.0.1:${server.port}/v1`,
		port: server.port,
		[Symbol.dispose]: () => server.stop(true)
	}
}

/** Wait until `condition()` holds, polling every few milliseconds; throws after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 10_000, what = 'the condition'): Promise<void> {
	const deadline = performance.now() + timeoutMs
	while (!condition()) {
		if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
		await Bun.sleep(2)
	}
}
