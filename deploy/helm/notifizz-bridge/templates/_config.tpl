{{/*
config is the bridge's config file: .Values.config with the keys the chart owns set from the
other values. Secrets never appear in it: it names the environment variables the pod gets from
the Secret, which the bridge expands at start (${VAR}).
*/}}
{{- define "notifizz-bridge.config" -}}
{{- $v := .Values -}}
{{- $cfg := deepCopy $v.config -}}
{{- $nats := dict "url" $v.nats.url -}}
{{- if $v.secret.natsToken -}}
{{- $_ := set $nats "token" "${NOTIFIZZ_BRIDGE_NATS_TOKEN}" -}}
{{- end -}}
{{- if $v.nats.user -}}
{{- $_ := set $nats "user" $v.nats.user -}}
{{- $_ := set $nats "password" "${NOTIFIZZ_BRIDGE_NATS_PASSWORD}" -}}
{{- end -}}
{{- if $v.secret.natsCreds -}}
{{- $_ := set $nats "credsFile" "/etc/notifizz-bridge/nats/creds" -}}
{{- end -}}
{{- if $v.secret.natsNkeySeed -}}
{{- $_ := set $nats "nkeySeedFile" "/etc/notifizz-bridge/nats/nkey-seed" -}}
{{- end -}}
{{- $tls := dict -}}
{{- range $key := list "caFile" "certFile" "keyFile" -}}
{{- if index $v.nats.tls $key -}}
{{- $_ := set $tls $key (printf "/etc/notifizz-bridge/nats-tls/%s" (index $v.nats.tls $key)) -}}
{{- end -}}
{{- end -}}
{{- if $tls -}}
{{- $_ := set $nats "tls" $tls -}}
{{- end -}}
{{- if not $v.nats.url -}}
{{- $_ := set $nats "embedded" (dict "listen" (printf "0.0.0.0:%d" (int $v.service.natsPort)) "storeDir" "/data/nats" "allowNoAuth" $v.nats.embedded.allowNoAuth) -}}
{{- end -}}
{{- $_ := set $cfg "nats" $nats -}}
{{- $_ := set $cfg "http" (dict "listen" (printf "0.0.0.0:%d" (int $v.service.httpPort))) -}}
{{- if gt (int $v.replicaCount) 1 -}}
{{- $count := int $v.partitions.count | default (int $v.replicaCount) -}}
{{- $partitions := dict "count" $count "mode" "static" "group" $v.partitions.group "member" "${NOTIFIZZ_BRIDGE_MEMBER}" "members" (include "notifizz-bridge.members" .) -}}
{{- if $v.partitions.failoverAfter -}}
{{- $_ := set $partitions "failoverAfter" $v.partitions.failoverAfter -}}
{{- end -}}
{{- $_ := set $cfg "partitions" $partitions -}}
{{- end -}}
{{- $notifizz := get $cfg "notifizz" | default dict -}}
{{- if and $v.secret.name $v.secret.sdkSecretKey -}}
{{- $_ := set $notifizz "sdkSecretKey" "${NOTIFIZZ_SDK_SECRET_KEY}" -}}
{{- end -}}
{{- if and $v.secret.name $v.secret.authSecretKey -}}
{{- $_ := set $notifizz "authSecretKey" "${NOTIFIZZ_AUTH_SECRET_KEY}" -}}
{{- end -}}
{{- if $notifizz -}}
{{- $_ := set $cfg "notifizz" $notifizz -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
