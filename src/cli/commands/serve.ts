/** @module `serve`: the HTTP API on loopback by default. */
import type { CAC } from 'cac'
import { isIP } from 'node:net'
import type { CommandContext, GlobalOptions } from '../context.ts'
import { UsageError } from '../errors.ts'

interface ServeOptions extends GlobalOptions {
	host: string
	port: string | number
	allowUnauthenticated?: boolean
}

export const DEFAULT_PORT = 8765

function isLoopback(host: string): boolean {
	const h = host.replace(/^\[|\]$/g, '')
	if (h === 'localhost') return true
	if (isIP(h) === 4) return h.startsWith('127.')
	return h === '::1'
}

export function registerServeCommand(cli: CAC, ctx: CommandContext): void {
	cli
		.command('serve', 'Serve the HTTP API (docs at /swagger)')
		.option('--host <host>', 'Address to bind', { default: '127.0.0.1' })
		.option('--port <port>', 'Port to bind (0 picks a free one)', { default: DEFAULT_PORT })
		.option('--allow-unauthenticated', 'Allow a non-loopback bind without IMAGEWORKS_API_TOKEN')
		.example((bin) => `  $ ${bin} serve\n  $ IMAGEWORKS_API_TOKEN=secret ${bin} serve --host 0.0.0.0 --port 8765`)
		.action(async (options: ServeOptions) => {
			const port = Number(options.port)
			if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${options.port} is not a port number (0-65535)`)
			const host = String(options.host)
			const deps = await ctx.deps(options)
			if (!isLoopback(host) && !deps.settings.apiToken && !options.allowUnauthenticated) {
				throw new UsageError(
					`refusing to bind ${host} without IMAGEWORKS_API_TOKEN: anyone who can reach it could change the registry. ` +
						'Set IMAGEWORKS_API_TOKEN, or pass --allow-unauthenticated if that is intended'
				)
			}
			deps.store.shareStatsWithinATurn()
			deps.store.load() // fail fast, with the registry's own message, when it cannot be read at start
			const { createApp } = await import('../../http/app.ts')
			const app = createApp({ ...deps, inlineHashBelow: 0 }).listen({ hostname: host, port })
			const server = app.server
			if (!server) throw new Error('the server did not start')
			ctx.out.line(
				`imageworks-loader serving ${deps.settings.registryPath} on http://${host.includes(':') ? `[${host}]` : host}:${server.port} (docs: /swagger)`
			)
			await new Promise<void>((resolve) => {
				const stop = () => {
					process.off('SIGINT', stop)
					process.off('SIGTERM', stop)
					void server.stop().then(() => resolve())
				}
				process.on('SIGINT', stop)
				process.on('SIGTERM', stop)
			})
		})
}
