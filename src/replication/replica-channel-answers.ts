import { encodeAck, encodeRecord } from './replica-frames.js';
import type { ReplicaRecord, WriteOutcome } from './replica-store.js';

/** What a ChannelAnswers needs from its connection. */
export interface ChannelAnswersOptions {
  /** Writes one answer frame to the peer (a no-op once the connection is gone). */
  send: (frame: Buffer) => void;
  /** The store's epoch now (acks carry it). */
  epochOf: () => string;
  /** The error frame answering request `id` (logs what is not a StickyError). */
  errorFrameOf: (id: number, error: unknown) => Buffer;
}

/** Spare answers kept per connection for reuse: more owed at once than this are allocated anew. */
const MAX_SPARE_ANSWERS = 256;

/**
 * One answer owed to the peer, linked to the next one owed. Its two handlers are created once
 * and the object is reused after it was sent, so a frame allocates no closures
 * (STYLE.md: no closures per request on the hot path). Reuse is safe: an answer goes back to
 * the spares only after its promise settled, and a promise settles once.
 */
class Answer {
  id = 0;
  /** The encoded answer, once known; the answer is sent when every earlier one was. */
  frame: Buffer | undefined = undefined;
  next: Answer | undefined = undefined;
  readonly #answers: ChannelAnswers;
  readonly #options: ChannelAnswersOptions;

  constructor(answers: ChannelAnswers, options: ChannelAnswersOptions) {
    this.#answers = answers;
    this.#options = options;
  }

  readonly onOutcomes = (outcomes: WriteOutcome[]): void => this.#ack(outcomes);
  readonly onDone = (): void => this.#ack(undefined);
  readonly onRecord = (record: ReplicaRecord | undefined): void => {
    let frame: Buffer;
    try {
      frame = encodeRecord(this.id, this.#options.epochOf(), record && JSON.stringify(record));
    } catch (error) {
      frame = this.#options.errorFrameOf(this.id, error);
    }
    this.#answers.settle(this, frame);
  };
  readonly onError = (error: unknown): void => {
    this.#answers.settle(this, this.#options.errorFrameOf(this.id, error));
  };

  #ack(outcomes: WriteOutcome[] | undefined): void {
    let frame: Buffer;
    try {
      frame = encodeAck(this.id, this.#options.epochOf(), outcomes);
    } catch (error) {
      // Thrown in a promise handler it would be an unhandled rejection, and the peer would wait forever.
      frame = this.#options.errorFrameOf(this.id, error);
    }
    this.#answers.settle(this, frame);
  }
}

/**
 * The answers one channel owes, sent in the order the requests arrived whatever settles
 * first: an epoch or a refused body is known at once, a write's ack only when the store's
 * promise settles, and the node's transport (`isOrdered`) relies on the order.
 */
export class ChannelAnswers {
  readonly #options: ChannelAnswersOptions;
  /** The oldest answer not sent yet, and the newest one. */
  #first: Answer | undefined;
  #last: Answer | undefined;
  #spare: Answer | undefined;
  #spareCount = 0;
  #onSettled: (() => void) | undefined;

  constructor(options: ChannelAnswersOptions) {
    this.#options = options;
  }

  /** Whether answers are owed that were not sent yet. */
  get isOwing(): boolean {
    return this.#first !== undefined;
  }

  /** An answer known now (an epoch, a refused body): sent at once unless earlier ones are owed. */
  answerNow(frame: Buffer): void {
    if (this.#first === undefined) {
      this.#options.send(frame);
      return;
    }
    this.#enqueue(0).frame = frame;
  }

  /** Answers write `id` once the store settled it: an ack with the outcomes, or an error. */
  answerWrite(id: number, pending: Promise<WriteOutcome[]>): void {
    const answer = this.#enqueue(id);
    pending.then(answer.onOutcomes, answer.onError);
  }

  /** Answers a touch or remove `id` once the store settled it: an ack, or an error. */
  answerDone(id: number, pending: Promise<void>): void {
    const answer = this.#enqueue(id);
    pending.then(answer.onDone, answer.onError);
  }

  /** Answers a read `id` once the store settled it: the record (or none), or an error. */
  answerRead(id: number, pending: Promise<ReplicaRecord | undefined>): void {
    const answer = this.#enqueue(id);
    pending.then(answer.onRecord, answer.onError);
  }

  /** Calls `callback` once every answer owed now was sent (at once if none is owed). */
  whenSent(callback: () => void): void {
    if (this.#first === undefined) callback();
    else this.#onSettled = callback;
  }

  /** Records `answer`'s frame and sends every answer now ready at the head (Answer calls it). */
  settle(answer: Answer, frame: Buffer): void {
    answer.frame = frame;
    if (answer !== this.#first) return;
    while (this.#first?.frame !== undefined) {
      const head: Answer = this.#first;
      const ready = head.frame as Buffer;
      this.#first = head.next;
      this.#release(head);
      this.#options.send(ready);
    }
    if (this.#first !== undefined) return;
    this.#last = undefined;
    const onSettled = this.#onSettled;
    this.#onSettled = undefined;
    onSettled?.();
  }

  #enqueue(id: number): Answer {
    let answer = this.#spare;
    if (answer === undefined) {
      answer = new Answer(this, this.#options);
    } else {
      this.#spare = answer.next;
      this.#spareCount--;
      answer.next = undefined;
    }
    answer.id = id;
    if (this.#last === undefined) this.#first = answer;
    else this.#last.next = answer;
    this.#last = answer;
    return answer;
  }

  #release(answer: Answer): void {
    answer.frame = undefined;
    answer.next = undefined;
    if (this.#spareCount >= MAX_SPARE_ANSWERS) return;
    answer.next = this.#spare;
    this.#spare = answer;
    this.#spareCount++;
  }
}
