/** Messages between a gateway process's main thread and its HTTP threads. */

export type ToMain =
  | { t: 'listening'; port: number }
  | { t: 'scrape'; id: number }
  | { t: 'drained' };

export type ToThread =
  | { t: 'scraped'; id: number; text: string; contentType: string; failed?: boolean }
  | { t: 'drain'; deadlineMs: number };
