# bash completion for alcove(1)                             -*- shell-script -*-

_alcove()
{
    local cur prev words cword
    _init_completion -s || return

    local commands="init whoami invite accept contacts send checkin fetch listen
        read checkins verify forget ask answer scores notice receipts export audit
        backup restore reinvite help"
    local globals="--home --json --passphrase-file --help --version"

    case $prev in
        --home)
            _filedir -d
            return ;;
        --passphrase-file|--backup-passphrase-file|--output)
            _filedir
            return ;;
        --format)
            COMPREPLY=($(compgen -W "md json" -- "$cur"))
            return ;;
        --delivered|--read)
            COMPREPLY=($(compgen -W "on off" -- "$cur"))
            return ;;
        --relay|--name|--notice|--expires|--mood|--anxiety|--sleep|--note|\
        --tag|--once-idle|--values|--until|--since)
            return ;;
    esac
    [[ $was_split ]] && return

    # The command is the first word that is neither an option nor the value
    # of --home / --passphrase-file.
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --home|--passphrase-file) ((i++)) ;;
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
        return
    fi
    local flags=""
    case $cmd in
        init) flags="--relay --name --no-passphrase" ;;
        invite) flags="--name --notice --expires" ;;
        accept) flags="--name" ;;
        checkin) flags="--mood --anxiety --sleep --note --tag" ;;
        listen) flags="--once-idle" ;;
        read) flags="--all" ;;
        verify) flags="--mark-verified" ;;
        answer) flags="--values" ;;
        notice) flags="set clear show --until" ;;
        receipts) flags="--delivered --read" ;;
        export) flags="--since --format --output" ;;
        audit) flags="verify" ;;
        backup) flags="--backup-passphrase-file"
            [[ $cur != -* ]] && { _filedir; return; } ;;
        restore) flags="--backup-passphrase-file"
            [[ $cur != -* ]] && { _filedir; return; } ;;
        ask) [[ $cur != -* ]] && {
                COMPREPLY=($(compgen -W "phq9 gad7" -- "$cur"))
                _filedir
                return
            } ;;
        send) [[ $cur != -* ]] && return ;;
        help)
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            return ;;
    esac
    COMPREPLY=($(compgen -W "$flags --home --json --passphrase-file --help" -- "$cur"))
} &&
    complete -F _alcove alcove

# ex: filetype=sh
