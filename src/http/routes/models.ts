/** @module GET /v1/models, POST /v1/select: which models exist, and where to reach one. */
import { Elysia } from 'elysia'
import type { Registry } from '../../core/registry.ts'
import { ModelSummary, Selection } from '../../core/schema.ts'
import { type Deps, listModels, selectModel } from '../../core/service.ts'
import { BODY_ERRORS, ModelsQuery, SelectBody, responses } from '../model.ts'
import { Type } from '@sinclair/typebox'

/** Pre-serialised `GET /v1/models` bodies, rebuilt only when the registry snapshot changes. */
const bodies = new WeakMap<Registry, Map<string, string>>()

function listBody(registry: Registry, role: string | undefined): string {
	let cache = bodies.get(registry)
	if (!cache) bodies.set(registry, (cache = new Map()))
	const key = role ?? '\u0000all'
	let body = cache.get(key)
	if (body === undefined) {
		body = JSON.stringify(listModels(registry, { role }))
		if (cache.size < 256) cache.set(key, body)
	}
	return body
}

export function modelRoutes(deps: Deps) {
	return new Elysia({ name: 'models' })
		.get(
			'/v1/models',
			({ query }) => {
				const { registry } = deps.store.loadOrLastGood()
				return new Response(listBody(registry, query.role), { headers: { 'content-type': 'application/json' } })
			},
			{
				query: ModelsQuery,
				response: responses(Type.Array(ModelSummary)),
				detail: { tags: ['models'], summary: 'List models', description: 'Every model, sorted by name, with canonical capabilities.' }
			}
		)
		.post(
			'/v1/select',
			({ body }) => {
				const { registry } = deps.store.loadOrLastGood()
				return selectModel(deps, { name: body.name, role: body.role, require: body.require_capabilities }, registry)
			},
			{
				body: SelectBody,
				response: responses(Selection, {
					...BODY_ERRORS,
					404: 'unknown model, or no model for the role',
					409: 'missing capability, or a locked model whose files changed since its last verify'
				}),
				detail: {
					tags: ['models'],
					summary: 'Select a model',
					description: 'Where to reach a model (by name, alias or role): endpoint, backend and the id the backend knows it by.'
				}
			}
		)
}
