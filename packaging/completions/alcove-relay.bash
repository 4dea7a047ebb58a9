# bash completion for alcove-relay(8)                       -*- shell-script -*-

_alcove_relay()
{
    local cur prev words cword
    _init_completion -s || return

    local commands="init run address check-config stats verify backup help"
    local data_flags="--config --data --public"
    local run_flags="--config --data --listen --log-file --log-level --log-addresses
        --max-blob --ttl --mailbox-idle --max-messages --max-mailbox-bytes
        --max-connections --handshake-timeout --idle-timeout --rate --rate-burst
        --write-queue --fetch-default --expiry-interval --max-store --batch-ops
        --batch-bytes --journal-size --admin-listen --admin-allow-remote"

    if [[ $cword -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    case $prev in
        --config|--log-file)
            _filedir
            return ;;
        --data)
            _filedir -d
            return ;;
        --log-level)
            COMPREPLY=($(compgen -W "error warn info debug" -- "$cur"))
            return ;;
        --log-addresses|--admin-allow-remote)
            COMPREPLY=($(compgen -W "yes no" -- "$cur"))
            return ;;
        --listen|--public|--admin-listen|--max-blob|--ttl|--mailbox-idle|\
        --max-messages|--max-mailbox-bytes|--max-connections|--handshake-timeout|\
        --idle-timeout|--rate|--rate-burst|--write-queue|--fetch-default|\
        --expiry-interval|--max-store|--batch-ops|--batch-bytes|--journal-size)
            return ;;
    esac
    [[ $was_split ]] && return

    local flags
    case ${words[1]} in
        init) flags="--config --data --public --if-missing" ;;
        run) flags="$run_flags" ;;
        check-config) flags="$run_flags --public" ;;
        address|stats|verify) flags="$data_flags" ;;
        backup)
            flags="$data_flags"
            if [[ $cur != -* ]]; then
                _filedir -d
                return
            fi ;;
        help)
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            return ;;
        *) return ;;
    esac
    COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
} &&
    complete -F _alcove_relay alcove-relay

# ex: filetype=sh
