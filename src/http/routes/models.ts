/** @module GET /v1/models, POST /v1/select: which models exist, and where to reach one. */
import { Elysia } from 'elysia'
import { RequestError } from '../../core/errors.ts'
import type { Registry } from '../../core/registry.ts'
import { ModelSummary, Selection } from '../../core/schema.ts'
import { type Deps, backendStatus, listModels, selectModel, selectReady } from '../../core/service.ts'
import { selectionOf } from '../../core/select.ts'
import type { Counters } from '../prom.ts'
import { BODY_ERRORS, ModelsQuery, SelectBody, responses } from '../model.ts'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

const ModelRow = Type.Composite([
	ModelSummary,
	Type.Object({ backend_ok: Type.Optional(Type.Boolean({ description: 'Only with ?check=1: the backend serves the model now.' })) })
])

/**
 * Pre-serialised `GET /v1/models` bodies, rebuilt only when the registry snapshot changes. Kept as UTF-8
 * bytes: a string body is encoded again on every response (a quarter of a 1,000-entry list's cost).
 */
const bodies = new WeakMap<Registry, Map<string, Uint8Array>>()

function listBody(registry: Registry, role: string | undefined): Uint8Array {
	let cache = bodies.get(registry)
	if (!cache) bodies.set(registry, (cache = new Map()))
	const key = role ?? '\u0000all'
	let body = cache.get(key)
	if (body === undefined) {
		body = Buffer.from(JSON.stringify(listModels(registry, { role })))
		if (cache.size < 256) cache.set(key, body)
	}
	return body
}

const selectionBodies = new WeakMap<Selection, Uint8Array>()
const checkSelection = TypeCompiler.Compile(Selection)

/**
 * A selection as a JSON response, serialised and checked against its schema once per entry of a snapshot
 * (a selection is shared per entry: core/select.ts). Elysia's own response check is skipped for a Response,
 * so the check is made here; a selection that breaks it is our bug, answered 500 and logged.
 */
function selectionResponse(selection: Selection): Response {
	let body = selectionBodies.get(selection)
	if (body === undefined) {
		const name: string = selection.name
		if (!checkSelection.Check(selection)) throw new Error(`the selection of ${name} breaks the Selection schema`)
		selectionBodies.set(selection, (body = Buffer.from(JSON.stringify(selection))))
	}
	return new Response(body, { headers: { 'content-type': 'application/json' } })
}

export function modelRoutes(deps: Deps, counters: Counters) {
	return new Elysia({ name: 'models' })
		.get(
			'/v1/models',
			async ({ query }) => {
				const { registry } = deps.store.loadOrLastGood()
				if (query.check !== undefined && !['1', '0', 'true', 'false'].includes(query.check)) {
					throw new RequestError(`check=${JSON.stringify(query.check.slice(0, 20))} must be 1, 0, true or false`)
				}
				if (query.check !== '1' && query.check !== 'true') {
					// A cache hit is a map lookup: the body is rebuilt once per change of the file.
					return new Response(listBody(registry, query.role), { headers: { 'content-type': 'application/json' } })
				}
				const rows = listModels(registry, { role: query.role })
				const ready = await backendStatus(deps, rows.map((r) => selectionOf(registry.get(r.name))))
				return rows.map((r) => ({ ...r, backend_ok: ready.get(r.name) ?? false }))
			},
			{
				query: ModelsQuery,
				parse: 'json',
				response: responses(Type.Array(ModelRow)),
				detail: { tags: ['models'], summary: 'List models', description: 'Every model, sorted by name, with canonical capabilities.' }
			}
		)
		.post(
			'/v1/select',
			({ body }) => {
				const { registry } = deps.store.loadOrLastGood()
				const request = { name: body.name, role: body.role, require: body.require_capabilities }
				// Without a backend check, select is synchronous: no promise on the hot path.
				return body.check_backend
					? counters.counted('select', () => selectReady(deps, { ...request, checkBackend: true }, registry)).then(selectionResponse)
					: selectionResponse(counters.counted('select', () => selectModel(deps, request, registry)))
			},
			{
				parse: 'json',
				body: SelectBody,
				response: responses(Selection, {
					...BODY_ERRORS,
					404: 'unknown model, or no model for the role',
					409: 'missing capability, or a locked model whose files changed since its last verify',
					424: 'check_backend: the backend is down or does not serve the model'
				}),
				detail: {
					tags: ['models'],
					summary: 'Select a model',
					description: 'Where to reach a model (by name, alias or role): endpoint, backend and the id the backend knows it by.'
				}
			}
		)
}
