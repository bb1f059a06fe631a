/** The Elysia app in-process: requests go through `app.handle`, no network. */
import { createApp } from '../../src/http/app.ts'
import type { Deps } from '../../src/core/service.ts'

export interface Reply {
	status: number
	headers: Headers
	body: any
	text: string
}

/** A tiny client over the app: `call('POST', '/v1/select', {name: 'x'})`. */
export function client(deps: Deps) {
	const app = createApp(deps, { log: () => undefined }) // refused requests are expected here, not news
	return async function call(
		method: string,
		path: string,
		body?: unknown,
		headers: Record<string, string> = {}
	): Promise<Reply> {
		const init: RequestInit = { method, headers: { ...headers } }
		if (body !== undefined) {
			init.body = typeof body === 'string' ? body : JSON.stringify(body)
			;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
		}
		const res = await app.handle(new Request(`http://localhost${path}`, init))
		const text = await res.text()
		let parsed: unknown = undefined
		try {
			parsed = JSON.parse(text)
		} catch {
			parsed = undefined
		}
		return { status: res.status, headers: res.headers, body: parsed, text }
	}
}
