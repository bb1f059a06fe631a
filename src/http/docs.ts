/**
 * @module
 * The OpenAPI document (`/swagger/json`, from @elysiajs/swagger) and a docs page (`/swagger`) whose
 * script and styles are embedded in the binary: the plugin's own page loads them from a CDN, which a
 * machine without internet cannot reach.
 */
import { swagger } from '@elysiajs/swagger'
import { Elysia } from 'elysia'
import bundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }
import css from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }
import { VERSION } from '../version.ts'

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>imageworks-loader API</title>
<link rel="stylesheet" href="/swagger/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/swagger/assets/swagger-ui-bundle.js"></script>
<script>window.onload = () => { window.ui = SwaggerUIBundle({ url: '/swagger/json', dom_id: '#swagger-ui' }) }</script>
</body>
</html>`

const hidden = { detail: { hide: true } }

/** The docs plugin: the page, its embedded assets, and the OpenAPI document. */
export function docs() {
	return new Elysia({ name: 'imageworks-docs' })
		.use(
			swagger({
				path: '/swagger',
				specPath: '/swagger/json',
				exclude: [/^\/swagger/],
				documentation: {
					info: {
						title: 'imageworks-loader',
						version: VERSION,
						description:
							'Deterministic registry, selection, version locks, vision probes and metrics for local model servers.'
					},
					tags: [
						{ name: 'models', description: 'List and select models' },
						{ name: 'integrity', description: 'Verify, lock and unlock model files' },
						{ name: 'probes', description: 'Prove a model sees' },
						{ name: 'metrics', description: 'Time to first token and throughput' },
						{ name: 'health', description: 'Liveness' }
					]
				}
			})
		)
		// Registered after the plugin, so this page (local assets) replaces the plugin's (CDN assets).
		.get('/swagger', () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } }), hidden)
		.get(
			'/swagger/assets/swagger-ui-bundle.js',
			() => new Response(Bun.file(bundle), { headers: { 'content-type': 'text/javascript; charset=utf-8' } }),
			hidden
		)
		.get(
			'/swagger/assets/swagger-ui.css',
			() => new Response(Bun.file(css), { headers: { 'content-type': 'text/css; charset=utf-8' } }),
			hidden
		)
}
