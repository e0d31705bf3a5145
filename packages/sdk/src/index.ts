export { createVerifier, type Verifier, type VerifierOptions } from './verifier/create-verifier.ts';
export type { VerifyAnswer, VerifyQuestion, VerifiedToken, RateLimitAnswer, VerifyCode } from './verifier/verify-answer.ts';
export type { AnswerCacheOptions } from './verifier/answer-cache.ts';
export type { InvalidationStreamOptions, InvalidationEvent } from './events/invalidation-stream.ts';
export { KeywardUnavailableError, KeywardRequestError, KeywardProblemError, type KeywardProblem } from './errors.ts';
export { createKeywardClient, type KeywardClient, type KeywardClientOptions, type KeywardSchemas, type KeywardPaths } from './client/create-keyward-client.ts';
export {
  verifyWebhook,
  WebhookVerificationError,
  type KeywardWebhookEvent,
  type VerifyWebhookOptions,
  type WebhookHeaders,
  type WebhookRefusal,
} from './webhooks/verify-webhook.ts';
