/** @module `serve`: the HTTP API on loopback by default. */
import type { CAC } from 'cac'
import { isIP } from 'node:net'
import type { CommandContext, GlobalOptions } from '../context.ts'
import { UsageError } from '../errors.ts'
import type { Deps } from '../../core/service.ts'

interface ServeOptions extends GlobalOptions {
	host: string
	port: string | number
	allowUnauthenticated?: boolean
}

export const DEFAULT_PORT = 8765

/** How long requests in flight get to finish after SIGTERM or SIGINT before they are cut, in ms. */
const GRACE_MS = 4000

/**
 * Stop listening, let requests in flight (and the registry writes inside them) finish, then close the
 * state database. A request still running after {@link GRACE_MS} (a verify of a huge model) is cut and its
 * hashing children stopped, so the process always exits within about five seconds.
 */
async function shutDown(server: { stop(force?: boolean): Promise<void> }, deps: Deps): Promise<void> {
	const { stopHashing } = await import('../../core/hashing.ts') // loaded here: --help never pays for it
	const force = setTimeout(() => {
		stopHashing()
		void server.stop(true)
	}, GRACE_MS)
	await server.stop()
	clearTimeout(force)
	stopHashing()
	deps.state.close()
}

function isLoopback(host: string): boolean {
	const h = host.replace(/^\[|\]$/g, '')
	if (h === 'localhost') return true
	if (isIP(h) === 4) return h.startsWith('127.')
	return h === '::1'
}

export function registerServeCommand(cli: CAC, ctx: CommandContext, setExitCode: (code: number) => void): void {
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
			const base = `http://${host.includes(':') ? `[${host}]` : host}:${server.port}`
			ctx.out.line(`imageworks-loader serving ${deps.settings.registryPath} on ${base} (docs: ${base}/swagger)`)
			const signal = await new Promise<string>((resolve) => {
				const stop = (name: string) => {
					process.off('SIGINT', onInt)
					process.off('SIGTERM', onTerm)
					resolve(name)
				}
				const onInt = () => stop('SIGINT')
				const onTerm = () => stop('SIGTERM')
				process.on('SIGINT', onInt)
				process.on('SIGTERM', onTerm)
			})
			ctx.out.note(`${signal}: refusing new connections, finishing the requests in flight`)
			await shutDown(server, deps)
			ctx.out.note('stopped')
		})

	cli
		.command('health', 'Ask a running server whether it is healthy (exit 0) or not (exit 1): for container health checks')
		.option('--url <url>', 'The server', { default: `http://127.0.0.1:${DEFAULT_PORT}` })
		.option('--timeout <seconds>', 'Give up after this long', { default: 3 })
		.example((bin) => `  $ ${bin} health
  $ ${bin} health --url http://10.0.0.5:8765`)
		.action(async (options: { url: string; timeout: string | number }) => {
			const seconds = Number(options.timeout)
			if (!(seconds > 0)) throw new UsageError(`--timeout ${options.timeout} is not a number of seconds`)
			const url = `${String(options.url).replace(/\/+$/, '')}/healthz`
			try {
				const res = await fetch(url, { signal: AbortSignal.timeout(seconds * 1000) })
				const body = (await res.json().catch(() => ({}))) as { status?: string; reason?: string }
				if (res.status === 200 && body.status === 'ok') {
					ctx.out.line('ok')
					return
				}
				ctx.out.error(`${url} answered ${res.status} ${body.status ?? ''}${body.reason ? `: ${body.reason}` : ''}`.trim())
			} catch (error) {
				const why = (error as Error).name === 'TimeoutError' ? `no answer within ${seconds} s` : (error as Error).message
				ctx.out.error(`${url} is not answering (${why}). Is "imageworks-loader serve" running there?`)
			}
			setExitCode(1)
		})
}
