// A chair's requests for the meeting report: each waits for the server's `report` of its format,
// its refusal, REPORT_TIMEOUT_MS, or the connection's loss. No DOM; protocol.js keeps one.

import { msg as say } from "./i18n.js";
import { ConferenceError } from "./refusals.js";

export const REPORT_TIMEOUT_MS = 15_000;
export const REPORT_FORMATS = Object.freeze(["json", "csv"]);

export class ReportRequests {
  constructor() {
    this._waiting = []; // [{format, resolve, reject, timer}] in order of asking
  }

  /** How many requests wait for an answer. */
  get size() {
    return this._waiting.length;
  }

  /**
   * Asks for the report in `format` through `send` (false: not connected, refused at once).
   * Resolves to the report ({format, filename, content}).
   * @param {string} format
   * @param {(msg: object) => boolean} send
   */
  ask(format, send) {
    if (!REPORT_FORMATS.includes(format)) {
      return Promise.reject(new TypeError(`getReport: format must be json or csv, not ${format}`));
    }
    return new Promise((resolve, reject) => {
      const waiter = { format, resolve, reject, timer: 0 };
      const drop = () => {
        clearTimeout(waiter.timer);
        this._waiting = this._waiting.filter((w) => w !== waiter);
      };
      waiter.resolve = (value) => {
        drop();
        resolve(value);
      };
      waiter.reject = (error) => {
        drop();
        reject(error);
      };
      waiter.timer = setTimeout(
        () => waiter.reject(new ConferenceError(say("report.late"))),
        REPORT_TIMEOUT_MS,
      );
      this._waiting.push(waiter);
      if (!send({ type: "get_report", format })) {
        waiter.reject(new ConferenceError(say("client.notConnected")));
      }
    });
  }

  /** The server's report: the oldest request of its format has it. */
  answered(report) {
    this._waiting.find((w) => w.format === report.format)?.resolve(report);
  }

  /** The server refused a get_report: the oldest request fails with `error`. */
  refused(error) {
    this._waiting[0]?.reject(error);
  }

  /** The connection is gone: every request fails. */
  lost() {
    for (const waiter of [...this._waiting]) waiter.reject(new ConferenceError(say("report.lost")));
  }
}
