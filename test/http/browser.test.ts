/**
 * The docs page in a real browser: Debian's Chromium, headless, driven by playwright-core against the
 * compiled binary. Every route of the API must be listed on the rendered page from assets inside the
 * binary, no request may leave loopback, and a "try it" select from the page must answer what the CLI does.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { type Server, runBinary, startServer } from '../helpers/binary.ts'
import { ensureDebianPackage } from '../helpers/debian.ts'
import { EXAMPLE_REGISTRY } from '../helpers/paths.ts'
import { tempDir } from '../helpers/registry.ts'

const CHROMIUM = '/usr/bin/chromium'
const SLOW = 120_000
const missing = ensureDebianPackage(CHROMIUM, 'chromium')
if (missing) console.warn(`skipping the browser tests: ${missing}`)

describe.skipIf(missing !== undefined)('the docs page in headless Chromium', () => {
	let server: Server
	let browser: Browser
	let dir: ReturnType<typeof tempDir>

	beforeAll(async () => {
		dir = tempDir()
		server = await startServer(EXAMPLE_REGISTRY)
		browser = await chromium.launch({
			executablePath: CHROMIUM,
			args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
		})
	}, SLOW)

	afterAll(async () => {
		await browser?.close()
		await server?.stop()
		dir?.[Symbol.dispose]()
	})

	/** A page that records every request and lets only loopback ones through. */
	async function openDocs() {
		const context = await browser.newContext()
		const requests: string[] = []
		const outside: string[] = []
		await context.route('**/*', (route) => {
			const url = route.request().url()
			requests.push(url)
			const { protocol, hostname } = new URL(url)
			if (protocol === 'data:' || protocol === 'blob:' || hostname === '127.0.0.1' || hostname === 'localhost') return route.continue()
			outside.push(url)
			return route.abort()
		})
		const page = await context.newPage()
		await page.goto(`${server.url}/swagger`)
		await page.waitForSelector('.opblock', { timeout: 30_000 })
		return { context, page, requests, outside }
	}

	test(
		'lists every route of the API, from assets in the binary, with no request leaving loopback',
		async () => {
			const { context, page, requests, outside } = await openDocs()
			try {
				const spec = (await (await fetch(`${server.url}/swagger/json`)).json()) as { paths: Record<string, Record<string, unknown>> }
				const documented = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
				const rendered = await page.$$eval('.opblock', (blocks) =>
					blocks.map(
						(b) =>
							`${b.querySelector('.opblock-summary-method')?.textContent?.trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`
					)
				)
				expect(documented.length).toBeGreaterThanOrEqual(11)
				expect(rendered.sort()).toEqual(documented.sort())
				expect(outside).toEqual([])
				expect(requests.some((u) => u.endsWith('/swagger/assets/swagger-ui-bundle.js'))).toBe(true)
				const shot = join(dir.path, 'swagger.png')
				await page.screenshot({ path: shot, fullPage: true })
				expect(existsSync(shot) && statSync(shot).size > 10_000).toBe(true)
			} finally {
				await context.close()
			}
		},
		SLOW
	)

	test(
		'"try it" on select answers what the CLI answers',
		async () => {
			const { context, page, outside } = await openDocs()
			try {
				const block = page.locator('.opblock-post', { has: page.locator('.opblock-summary-path[data-path="/v1/select"]') })
				await block.locator('.opblock-summary').click()
				await block.locator('.try-out__btn').click()
				await block.locator('textarea.body-param__text').fill(JSON.stringify({ role: 'caption' }))
				const [response] = await Promise.all([
					page.waitForResponse((r) => r.url().endsWith('/v1/select') && r.request().method() === 'POST'),
					block.locator('.execute').click()
				])
				expect(response.status()).toBe(200)
				const fromPage = await response.json()
				await block.locator('.live-responses-table .response-col_status').first().waitFor()
				expect(await block.locator('.live-responses-table').innerText()).toContain(fromPage.endpoint)
				const cli = await runBinary(['--registry', EXAMPLE_REGISTRY, 'select', '--role', 'caption', '--json'])
				expect(cli.exitCode).toBe(0)
				expect(fromPage).toEqual(JSON.parse(cli.stdout))
				expect(outside).toEqual([])
			} finally {
				await context.close()
			}
		},
		SLOW
	)
})
