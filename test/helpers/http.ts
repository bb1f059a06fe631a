/** Assertions shared by the HTTP tests: the one error envelope every failure uses. */
import { expect } from 'bun:test'

/** What the in-process client and `fetch` both give: a status, headers and the parsed JSON body. */
export interface JsonReply {
	status: number
	headers: Headers
	body: any
	text: string
}

/**
 * Assert `reply` is the JSON error envelope `{"detail": {"error": code, "message": ..., ...}}` with
 * `status`, and return its `detail` for further checks.
 */
export function expectError(reply: JsonReply, status: number, code: string): Record<string, any> {
	expect({ status: reply.status, type: reply.headers.get('content-type'), keys: Object.keys(reply.body ?? {}) }).toEqual({
		status,
		type: expect.stringContaining('application/json'),
		keys: ['detail']
	})
	const detail = reply.body.detail as Record<string, any>
	// (Not toMatchObject: with asymmetric matchers bun 1.4 writes the matchers into the received object.)
	expect({ error: detail['error'], message: typeof detail['message'] }).toEqual({ error: code, message: 'string' })
	expect(detail['message'].length).toBeGreaterThan(10)
	return detail
}

/** `fetch` and read the body as text and (when it is JSON) parsed. */
export async function fetchJson(url: string, init: RequestInit = {}): Promise<JsonReply> {
	const res = await fetch(url, init)
	const text = await res.text()
	let body: unknown
	try {
		body = JSON.parse(text)
	} catch {
		body = undefined
	}
	return { status: res.status, headers: res.headers, body, text }
}

/**
 * POST `chunks` to `127.0.0.1:port` as a chunked body (Transfer-Encoding: chunked, no Content-Length)
 * over a raw socket, stopping as soon as the server answers. Returns the status, headers and body text.
 */
export async function postChunked(
	port: number,
	path: string,
	chunks: Iterable<Uint8Array>,
	headers: Record<string, string> = {},
	options: { pauseAfterBytes?: number } = {}
): Promise<{ status: number; headers: Record<string, string>; text: string; sentBytes: number }> {
	const { connect } = await import('node:net')
	const socket = connect({ host: '127.0.0.1', port })
	await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
	let received = Buffer.alloc(0)
	let answered = false
	const closed = new Promise<void>((resolve) => {
		socket.on('data', (data: Buffer) => {
			received = Buffer.concat([received, data])
			answered = true
		})
		socket.on('close', () => resolve())
		socket.on('error', () => resolve())
	})
	const head = [
		`POST ${path} HTTP/1.1`,
		`host: 127.0.0.1:${port}`,
		'content-type: application/json',
		'transfer-encoding: chunked',
		'connection: close',
		...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)
	].join('\r\n')
	const write = (data: string | Uint8Array) =>
		new Promise<void>((resolve) => {
			if (socket.destroyed || socket.write(data)) return resolve()
			const done = () => {
				socket.off('drain', done).off('close', done)
				resolve()
			}
			socket.on('drain', done).on('close', done)
		})
	await write(head + '\r\n\r\n')
	let sentBytes = 0
	for (const chunk of chunks) {
		if (answered || socket.destroyed) break
		await write(`${chunk.byteLength.toString(16)}\r\n`)
		await write(chunk)
		await write('\r\n')
		sentBytes += chunk.byteLength
		// A server that answers early closes a socket that still has unread input, and the kernel's reset
		// can destroy the answer before it is read: pause once past the limit, as a careful client
		// (curl with Expect, say) waits for an early answer.
		if (options.pauseAfterBytes !== undefined && sentBytes > options.pauseAfterBytes && !answered) {
			const until = Date.now() + 5000
			while (!answered && !socket.destroyed && Date.now() < until) await Promise.race([closed, Bun.sleep(5)])
		}
	}
	if (!answered && !socket.destroyed) await write('0\r\n\r\n')
	// The response is complete once its declared length has arrived (or the server closes).
	const deadline = Date.now() + 10_000
	for (;;) {
		const text = received.toString('latin1')
		const end = text.indexOf('\r\n\r\n')
		const length = /\r\ncontent-length: *(\d+)/i.exec(text)
		if (end >= 0 && length && received.byteLength >= end + 4 + Number(length[1])) break
		if (socket.destroyed || Date.now() > deadline) break
		await Promise.race([closed, Bun.sleep(5)])
	}
	socket.destroy()
	const text = received.toString('utf8')
	const end = text.indexOf('\r\n\r\n')
	const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
	return {
		status: Number(statusLine.split(' ')[1]),
		headers: Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])),
		text: text.slice(end + 4),
		sentBytes
	}
}
