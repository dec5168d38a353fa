// Bilingual labels for the codes the service sends (protocol §2–§4, policy.md).
// A code without a label is shown as the code itself, so a new reason never hides.

export const REASONS = {
  ok: ["通过", "OK"],
  unsupported_credential: ["不支持的凭证", "Unsupported credential"],
  malformed_credential: ["凭证格式错误", "Malformed credential"],
  unknown_key: ["未知签发密钥", "Unknown issuer key"],
  bad_signature: ["签名无效", "Bad signature"],
  credential_expired: ["凭证过期", "Credential expired"],
  credential_not_yet_valid: ["凭证未生效", "Not yet valid"],
  qr_expired: ["二维码过期", "QR expired"],
  qr_not_yet_valid: ["二维码时间异常", "QR not yet valid"],
  replayed: ["重复使用", "Replayed"],
  unsupported_card_version: ["卡片版本不支持", "Card version"],
  cryptogram_invalid: ["卡片认证失败", "Cryptogram invalid"],
  card_expired: ["卡片过期", "Card expired"],
  card_clone_suspected: ["疑似克隆卡", "Clone suspected"],
  card_blocked: ["卡片已挂失", "Card blocked"],
  holder_blocked: ["持卡人停用", "Holder blocked"],
  clock_skew: ["终端时间异常", "Clock skew"],
  venue_closed: ["不在开放时间", "Venue closed"],
  capacity_reached: ["客流已满", "Capacity reached"],
  already_entered_today: ["今日已入园", "Already entered"],
  companion_not_allowed: ["陪同不符", "Companion refused"],
  offline_double_use: ["离线重复使用", "Offline double use"],
  terminal_denied: ["终端离线拒绝", "Denied offline by terminal"],
};

export const FRAUD = {
  replay: ["重放", "Replay"],
  card_clone: ["克隆卡", "Cloned card"],
  blocked_card: ["挂失卡尝试", "Blocked card"],
  blocked_holder: ["停用持卡人", "Blocked holder"],
  bad_signature: ["凭证签名错误", "Bad QR signature"],
  bad_cryptogram: ["卡片密文错误", "Bad cryptogram"],
  bad_terminal_signature: ["终端签名错误", "Bad terminal signature"],
  offline_double_use: ["离线重复使用", "Offline double use"],
};

export const FARES = {
  free: ["免费", "Free", "#2fd184"],
  half: ["半价", "Half", "#4aa8ff"],
  full: ["全价", "Full", "#8a9bb0"],
};

export const CATEGORIES = {
  senior: ["老年人", "Seniors"],
  veteran: ["退役军人", "Veterans"],
  disabled: ["残疾人", "Disabled"],
  resident: ["本地居民", "Residents"],
};

export const CREDENTIALS = { ssc_card: ["实体卡", "card"], essc_qr: ["电子码", "QR"] };

export function label(table, code) {
  return table[code] || [code, ""];
}

export const AUDIT_ACTIONS = {
  "card_block.put": ["挂失卡片", "card blocked"],
  "card_block.delete": ["解除卡片挂失", "card unblocked"],
  "holder_block.put": ["停用持卡人", "holder blocked"],
  "holder_block.delete": ["恢复持卡人", "holder unblocked"],
  "holder.put": ["登记持卡人", "registry entry set"],
  "holder.delete": ["删除登记", "registry entry removed"],
  "holder.import": ["批量导入", "registry import"],
};

/** A venue id (`spot:S01`, `bus:K2`) as its name from config/city.toml: [zh, en]. */
export function venueName(who, id) {
  const venue = id && who && who.venues ? who.venues[id] : null;
  return venue ? [venue.name, venue.name_en || ""] : [id || "–", ""];
}

/** An operator id (`OP-BUS-CITY`) as its name: [zh, en]. */
export function operatorName(who, id) {
  const op = who && who.operators ? who.operators.find((o) => o.id === id) : null;
  return op ? [op.name, op.name_en || ""] : [id || "–", ""];
}
