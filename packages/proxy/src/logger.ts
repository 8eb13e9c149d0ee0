/**
 * The root pino logger. Only the entry point creates it; libraries get a
 * child (`logger.child({ pkg })`) and log nothing per message above debug.
 */
import pino from 'pino'
import type { Logger } from 'pino'

/** JSON lines on stdout (or stderr when stdout carries command output). */
export function createLogger (level: string, destination: 1 | 2 = 1): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: destination, sync: false }))
}

export type { Logger }
